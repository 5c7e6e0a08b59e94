"""Dynamic batcher: the pure batch plan, merging, size and delay bounds, timeout, cancellation, the invariant."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from framequeue.errors import JobTimeout, ServiceUnavailable
from framequeue.inference.batcher import Arrays, DynamicBatcher, plan_batch


def run_async(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in a fresh event loop (no pytest plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


@dataclass
class Q:
    rows: int
    enqueued_s: float
    key: str = "k"


def test_plan_waits_for_the_oldest_delay_then_takes_what_fits() -> None:
    queue = [Q(1, 10.0), Q(2, 10.001)]
    assert plan_batch(queue, 10.0005, max_batch_size=8, max_queue_delay_s=0.002).take == ()
    assert plan_batch(queue, 10.0005, 8, 0.002).wait_s == pytest.approx(0.0015)
    assert plan_batch(queue, 10.002, 8, 0.002).take == (0, 1)


def test_plan_runs_a_full_batch_at_once_and_never_exceeds_the_size() -> None:
    queue = [Q(3, 0.0), Q(3, 0.0), Q(3, 0.0)]
    assert plan_batch(queue, 0.0, max_batch_size=6, max_queue_delay_s=1.0).take == (0, 1)
    # the next one does not fit: run now, and nothing behind it overtakes it
    assert plan_batch([Q(3, 0.0), Q(4, 0.0), Q(1, 0.0)], 0.0, 6, 1.0).take == (0,)
    # larger than the limit on its own: runs alone, at once
    assert plan_batch([Q(9, 0.0), Q(1, 0.0)], 0.0, 6, 1.0).take == (0,)


def test_plan_merges_only_compatible_requests() -> None:
    queue = [Q(1, 0.0, "a"), Q(1, 0.0, "b"), Q(1, 0.0, "a")]
    assert plan_batch(queue, 5.0, 8, 1.0).take == (0, 2)


def test_plan_with_batching_off_takes_one_request() -> None:
    assert plan_batch([Q(1, 0.0), Q(1, 0.0)], 0.0, max_batch_size=1, max_queue_delay_s=0.0).take == (0,)


class Recorder:
    """y = x + 1, recording each execution's rows; `gate` holds executions until set."""

    def __init__(self) -> None:
        self.calls: list[np.ndarray[Any, Any]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, inputs: Arrays) -> Arrays:
        self.entered.set()
        self.gate.wait(5)
        self.calls.append(inputs["x"].copy())
        return {"y": inputs["x"] + 1}


def rows(first: float, n: int = 1) -> Arrays:
    return {"x": np.arange(first, first + n, dtype=np.float32).reshape(n, 1).repeat(4, axis=1)}


@run_async
async def test_concurrent_callers_merge_and_each_gets_its_own_rows() -> None:
    run = Recorder()
    batcher = DynamicBatcher(run, max_batch_size=32, max_queue_delay_s=0.05)
    results = await asyncio.gather(*(batcher.submit(rows(10 * i, n=1 + i % 3)) for i in range(8)))
    for i, out in enumerate(results):
        np.testing.assert_array_equal(out["y"], rows(10 * i, 1 + i % 3)["x"] + 1)
    assert len(run.calls) == 1 and batcher.stats.executions == 1 and batcher.stats.requests == 8
    await batcher.close()


@run_async
async def test_batches_never_exceed_max_batch_size() -> None:
    run = Recorder()
    batcher = DynamicBatcher(run, max_batch_size=4, max_queue_delay_s=0.05)
    results = await asyncio.gather(*(batcher.submit(rows(i)) for i in range(10)))
    assert [int(r["y"][0, 0]) for r in results] == list(range(1, 11))
    assert [len(c) for c in run.calls] == [4, 4, 2]
    await batcher.close()


@run_async
async def test_a_lone_request_waits_no_longer_than_the_delay() -> None:
    run = Recorder()
    batcher = DynamicBatcher(run, max_batch_size=8, max_queue_delay_s=0.02)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await batcher.submit(rows(0))
    assert 0.015 <= loop.time() - start < 1.0
    await batcher.close()


@run_async
async def test_batching_off_runs_every_request_alone() -> None:
    run = Recorder()
    batcher = DynamicBatcher(run, max_batch_size=1, max_queue_delay_s=0.0)
    await asyncio.gather(*(batcher.submit(rows(i)) for i in range(5)))
    assert [len(c) for c in run.calls] == [1] * 5
    await batcher.close()


@run_async
async def test_a_request_not_started_in_time_times_out_and_never_runs() -> None:
    run = Recorder()
    run.gate.clear()
    batcher = DynamicBatcher(run, max_batch_size=1, max_queue_delay_s=0.0)
    first = asyncio.create_task(batcher.submit(rows(1)))
    await asyncio.to_thread(run.entered.wait, 5)  # the only instance is busy with `first`
    with pytest.raises(JobTimeout, match="did not start within"):
        await batcher.submit(rows(2), timeout_s=0.05)
    run.gate.set()
    assert (await first)["y"][0, 0] == 2
    await batcher.submit(rows(3))
    assert [c[0, 0] for c in run.calls] == [1, 3]  # rows 2 never ran
    assert batcher.stats.timed_out == 1
    await batcher.close()


@run_async
async def test_a_cancelled_caller_is_dropped_before_batching() -> None:
    run = Recorder()
    run.gate.clear()
    batcher = DynamicBatcher(run, max_batch_size=8, max_queue_delay_s=0.0)
    first = asyncio.create_task(batcher.submit(rows(1)))
    await asyncio.to_thread(run.entered.wait, 5)
    cancelled = asyncio.create_task(batcher.submit(rows(2)))
    kept = asyncio.create_task(batcher.submit(rows(3)))
    await asyncio.sleep(0)
    cancelled.cancel()
    run.gate.set()
    await first
    np.testing.assert_array_equal((await kept)["y"], rows(3)["x"] + 1)
    assert cancelled.cancelled()
    assert [c[:, 0].tolist() for c in run.calls] == [[1.0], [3.0]]
    assert batcher.stats.cancelled == 1
    await batcher.close()


@run_async
async def test_an_output_with_the_wrong_row_count_fails_every_caller() -> None:
    batcher = DynamicBatcher(lambda inputs: {"y": inputs["x"][:1]}, max_batch_size=8, max_queue_delay_s=0.02)
    outcomes = await asyncio.gather(batcher.submit(rows(0)), batcher.submit(rows(1)), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) and "batch of 2 rows" in str(o) for o in outcomes)
    await batcher.close()


@run_async
async def test_a_full_queue_refuses_with_service_unavailable() -> None:
    run = Recorder()
    run.gate.clear()
    batcher = DynamicBatcher(run, max_batch_size=1, max_queue_delay_s=0.0, max_queue=1)
    first = asyncio.create_task(batcher.submit(rows(1)))
    await asyncio.to_thread(run.entered.wait, 5)
    second = asyncio.create_task(batcher.submit(rows(2)))
    await asyncio.sleep(0)
    with pytest.raises(ServiceUnavailable, match="already queued"):
        await batcher.submit(rows(3))
    run.gate.set()
    await asyncio.gather(first, second)
    await batcher.close()


@run_async
async def test_real_onnx_graph_batched_equals_alone(tmp_path: Any) -> None:
    pytest.importorskip("onnx")
    from framequeue.inference.runner import OnnxRunner
    from tests.unit.inference_models import write_version

    runner = OnnxRunner(write_version(tmp_path, "add", 1, constant=7.0))
    batcher = DynamicBatcher(runner.run, max_batch_size=8, max_queue_delay_s=0.05)
    results = await asyncio.gather(*(batcher.submit(rows(100 * i, 2)) for i in range(4)))
    for i, out in enumerate(results):
        np.testing.assert_array_equal(out["y"], rows(100 * i, 2)["x"] + 7)
    assert batcher.stats.executions == 1 and batcher.stats.batch_sizes == {8: 1}
    await batcher.close()
