"""The warm media child: one process serves job after job, and is retired after its share or after any
job that did not end cleanly."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from framequeue.media.limits import MediaLimits
from framequeue.worker.child import MediaChild
from framequeue.worker.messages import ChildSpec


def _spec(tmp: Path, n: int, **params: Any) -> ChildSpec:
    payload = tmp / f"in-{n}.bin"
    payload.write_bytes(b"x" * n)
    return ChildSpec(pipeline="noop", params=params, input_path=payload, output_dir=tmp / f"out-{n}",
                     model_repo=tmp / "models", threads=1, limits=MediaLimits())


def _finish(child: MediaChild) -> tuple[Any, ...]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        msg = child.poll(0.2)
        if msg is not None and msg[0] != "progress":
            return msg
        if msg is None and not child.is_alive():
            return ("dead", child.exitcode)
    raise AssertionError("the child gave no answer")


def _pid(child: MediaChild) -> int:
    pid: int = child._process.pid
    return pid


@pytest.fixture
def ctx() -> Any:
    return mp.get_context("forkserver")


def test_one_child_serves_several_jobs_then_retires_after_its_share(ctx: Any, tmp_path: Path) -> None:
    child = MediaChild(ctx, "media-test", max_jobs=3)
    try:
        pid = _pid(child)
        for n in (1, 2, 3):
            child.run(_spec(tmp_path, n))
            reply = _finish(child)
            assert reply[0] == "done" and reply[1].outputs == {"result": "result.json"}
            assert (tmp_path / f"out-{n}" / "result.json").read_text() == f'{{"input_size_bytes": {n}}}'
            assert _pid(child) == pid and child.is_alive()
            assert child.reusable_after(reply) is (n < 3)
    finally:
        child.stop()
    assert not child.is_alive()


def test_an_expected_error_keeps_the_child_an_unexpected_one_retires_it(ctx: Any, tmp_path: Path) -> None:
    child = MediaChild(ctx, "media-test", max_jobs=10)
    try:
        child.run(_spec(tmp_path, 1, sleep_s="soon"))  # the noop refuses nothing at run time: a TypeError
        reply = _finish(child)
        assert reply[0] == "error" and reply[1] == "internal_error" and reply[3] is True
        assert not child.reusable_after(reply)
    finally:
        child.stop()
    child = MediaChild(ctx, "media-test", max_jobs=10)
    try:
        pid = _pid(child)
        unknown = ChildSpec(**{**_spec(tmp_path, 2).__dict__, "pipeline": "no-such-pipeline"})
        child.run(unknown)
        reply = _finish(child)
        assert reply[:2] == ("error", "unknown_pipeline")
        assert child.reusable_after(reply)
        child.run(_spec(tmp_path, 3))
        assert _finish(child)[0] == "done" and _pid(child) == pid
    finally:
        child.stop()


def test_a_child_that_crashes_is_seen_dead_and_not_reused(ctx: Any, tmp_path: Path) -> None:
    child = MediaChild(ctx, "media-test", max_jobs=10)
    try:
        child.run(_spec(tmp_path, 1, crash=True))
        reply = _finish(child)
        assert reply == ("dead", 139)
        assert not child.reusable_after(("done", None))
    finally:
        child.stop()


def test_a_child_killed_while_idle_fails_the_next_handover_without_raising(ctx: Any, tmp_path: Path) -> None:
    child = MediaChild(ctx, "media-test", max_jobs=10)
    os.kill(_pid(child), signal.SIGKILL)
    child._process.join(5)
    child.run(_spec(tmp_path, 1))  # the pipe is broken: no exception, the supervisor sees it dead
    assert _finish(child)[0] == "dead"
    child.stop()


def test_sigterm_stops_a_running_job_and_ends_the_child(ctx: Any, tmp_path: Path) -> None:
    child = MediaChild(ctx, "media-test", max_jobs=10)
    child.run(_spec(tmp_path, 1, sleep_s=60.0))
    time.sleep(0.5)
    started = time.monotonic()
    child.stop()
    assert time.monotonic() - started < 3.0  # the pipeline saw its stop event; no SIGKILL needed
    assert not child.is_alive()


def test_release_memory_gives_freed_heap_back() -> None:
    """What a warm child does after each job: heap memory a job freed leaves the process (glibc)."""
    import ctypes

    from framequeue.worker.sandbox import release_memory

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 (glibc only)
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]

    def rss_mib() -> float:
        status = Path("/proc/self/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024

    # 64 KiB blocks stay below glibc's mmap threshold: they live in the heap, and freeing them keeps the pages
    blocks = [libc.malloc(64 * 1024) for _ in range(3200)]
    for block in blocks:
        ctypes.memset(block, 1, 64 * 1024)
    pinned = libc.malloc(64 * 1024)  # above them all, so the heap's top cannot simply shrink
    for block in blocks:
        libc.free(block)
    held = rss_mib()
    release_memory()
    assert held - rss_mib() > 150  # of the 200 MiB freed
    libc.free(pinned)
