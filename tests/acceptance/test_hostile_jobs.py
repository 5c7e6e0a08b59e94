"""The media child's limits over HTTP, with a real API and one real worker: each hostile job ends failed
with its own code and attempts, nothing of it is committed, and the worker runs the next job."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.deployment import Deployment

pytestmark = pytest.mark.slow

#: the worker's scratch is a tmpfs this small (when the test may mount one), so a job can fill it
SCRATCH_MB = 4


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("hostile")
    scratch = root / "scratch"
    scratch.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SCRATCH_MB}m", "tmpfs", str(scratch)],
                             capture_output=True).returncode == 0
    dep = Deployment(root, lease_s=10, heartbeat_s=1, reap_interval_s=1, drain_s=1, child_memory_mb=1024,
                     scratch_dir=scratch)
    dep.scratch_mounted = mounted  # type: ignore[attr-defined]
    try:
        dep.start("api", "api")
        dep.wait_ready()
        dep.start("w1", "worker")
        yield dep
    finally:
        dep.stop()
        if mounted:
            subprocess.run(["umount", str(scratch)], check=False)


def submit_noop(dep: Deployment, tmp_path: Path, size: int = 1, **body: Any) -> dict[str, Any]:
    payload = tmp_path / f"payload-{size}.bin"
    payload.write_bytes(b"x" * size)
    key = dep.client.upload(payload)["key"]
    return dep.client.submit({"pipeline": "noop", "input": {"key": key}, **body})


def committed_outputs(dep: Deployment, job_id: str) -> list[Path]:
    return [p for p in (dep.home / "objects" / "outputs" / job_id).rglob("*") if p.is_file()]


def assert_failed(dep: Deployment, record: dict[str, Any], code: str, attempts: int) -> None:
    assert record["status"] == "failed", record
    assert record["error"]["code"] == code and record["error"]["message"], record
    assert record["attempts"] == attempts, record
    assert record["outputs"] == {} and committed_outputs(dep, record["id"]) == []


def assert_next_job_succeeds(dep: Deployment, tmp_path: Path) -> None:
    assert dep.procs["w1"].poll() is None, "the worker died"
    good = dep.wait_done(submit_noop(dep, tmp_path)["id"], timeout_s=60)
    assert good["status"] == "succeeded" and good["attempts"] == 1, good


def media_children(worker_pid: int) -> set[int]:
    """Pids of the media processes the worker's fork server started."""
    parents: dict[int, int] = {}
    servers: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                forkserver = b"forkserver" in (entry / "cmdline").read_bytes()
            except OSError:
                continue
            parents[int(entry.name)] = ppid
            if ppid == worker_pid and forkserver:
                servers.add(int(entry.name))
    return {pid for pid, ppid in parents.items() if ppid in servers}


def test_memory_past_the_cap_fails_resource_exhausted_once(hostile: Deployment, tmp_path: Path) -> None:
    job = submit_noop(hostile, tmp_path, params={"alloc_mb": 2048})  # the cap is 1024 MiB
    record = hostile.wait_done(job["id"], timeout_s=60)
    assert_failed(hostile, record, "resource_exhausted", attempts=1)
    assert "memory" in record["error"]["message"]
    assert_next_job_succeeds(hostile, tmp_path)


def test_a_decoder_crash_is_retried_at_most_once(hostile: Deployment, tmp_path: Path) -> None:
    job = submit_noop(hostile, tmp_path, params={"segfault": True})
    record = hostile.wait_done(job["id"], timeout_s=60)
    assert_failed(hostile, record, "worker_crashed", attempts=2)  # max_attempts is 3
    assert "SIGSEGV" in record["error"]["message"]
    assert_next_job_succeeds(hostile, tmp_path)


def test_a_job_past_its_timeout_is_killed_and_fails(hostile: Deployment, tmp_path: Path) -> None:
    assert_next_job_succeeds(hostile, tmp_path)  # a warm child is up
    before = media_children(hostile.procs["w1"].pid)
    job = submit_noop(hostile, tmp_path, params={"sleep_s": 60}, timeout_s=1)
    hostile.wait_for(job["id"], lambda r: r["status"] == "running", timeout_s=30)
    running = media_children(hostile.procs["w1"].pid)
    record = hostile.wait_done(job["id"], timeout_s=30)
    assert_failed(hostile, record, "timeout", attempts=1)
    assert record["finished_at"]
    # the child that ran the job is gone (stopped, killed after its grace), not left sleeping
    deadline = time.monotonic() + 10
    while (before & running) & media_children(hostile.procs["w1"].pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert before & running and not (before & running) & media_children(hostile.procs["w1"].pid)
    assert_next_job_succeeds(hostile, tmp_path)  # the lease is not held: the one worker takes the next job


@pytest.mark.parametrize("where", ["output", "input"])
def test_a_full_scratch_disk_commits_nothing(
    hostile: Deployment, tmp_path: Path, where: str, request: pytest.FixtureRequest
) -> None:
    if not hostile.scratch_mounted:  # type: ignore[attr-defined]
        pytest.skip("mounting a small tmpfs as the worker's scratch is not permitted here")
    too_big = (SCRATCH_MB + 2) * 1024 * 1024
    if where == "output":
        job = submit_noop(hostile, tmp_path, params={"output_mb": SCRATCH_MB + 2})
    else:  # noop reads its input in place on a local store: detect's scratch copy of it fills the disk
        hostile.register_yolox(request.getfixturevalue("yolox_dir"))
        job = submit_noop(hostile, tmp_path, size=too_big, pipeline="detect")
    record = hostile.wait_done(job["id"], timeout_s=60)
    assert_failed(hostile, record, "resource_exhausted", attempts=1)
    assert "scratch disk is full" in record["error"]["message"]
    assert list(Path(hostile.env["FQ_SCRATCH_DIR"]).iterdir()) == []  # the attempt's scratch was cleared
    assert_next_job_succeeds(hostile, tmp_path)
