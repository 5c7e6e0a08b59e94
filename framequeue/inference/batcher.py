"""Per-version dynamic batcher: requests from many callers merge into one execution, each gets its rows.

Callers `submit` inputs whose first dimension is the batch (>= 1 rows). A loop takes the oldest queued
request and the compatible ones behind it (same input names, dtypes and per-row shapes), in arrival
order, up to `max_batch_size` rows; it runs them as soon as the batch is full or the oldest has waited
`max_queue_delay_s`, whichever is first (Triton's dynamic batcher, Ray's `@serve.batch`). The model runs
in a thread (ONNX Runtime releases the GIL); its outputs are split back by row ranges after checking
that every output has as many rows as went in. Up to `instances` executions run at once; while all are
busy, requests queue and form larger batches.

A request that times out or whose caller is cancelled before its batch is formed is dropped and never
runs; once its batch started it runs to the end (its result is discarded if the caller is gone).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from framequeue.errors import InvalidRequest, JobTimeout, ServiceUnavailable

__all__ = ["Arrays", "BatchPlan", "BatchStats", "DynamicBatcher", "plan_batch"]

#: named tensors, each with the batch as its first dimension
Arrays = dict[str, npt.NDArray[Any]]
#: requests one batcher holds before refusing more (503)
DEFAULT_MAX_QUEUE: Final = 1024


class Queued(Protocol):
    @property
    def rows(self) -> int: ...
    @property
    def key(self) -> Hashable: ...
    @property
    def enqueued_s(self) -> float: ...


@dataclass(frozen=True)
class BatchPlan:
    #: indexes into the queue to run now, in order; empty means wait
    take: tuple[int, ...]
    #: when `take` is empty: seconds until the oldest request's delay runs out
    wait_s: float


def plan_batch(queue: Sequence[Queued], now_s: float, max_batch_size: int, max_queue_delay_s: float) -> BatchPlan:
    """Which queued requests form the next batch, or how long to wait for more (pure: no clock, no I/O).

    The oldest request always goes first; compatible requests behind it join in arrival order while
    they fit. A request larger than `max_batch_size` runs alone.
    """
    if not queue:
        return BatchPlan((), max_queue_delay_s)
    oldest = queue[0]
    take, rows, full = [0], oldest.rows, oldest.rows >= max_batch_size
    for i in range(1, len(queue)):
        if full:
            break
        if queue[i].key != oldest.key:
            continue
        if rows + queue[i].rows > max_batch_size:
            full = True  # first come, first served: nothing overtakes a request that did not fit
            break
        take.append(i)
        rows += queue[i].rows
        full = rows >= max_batch_size
    waited_s = now_s - oldest.enqueued_s
    if full or waited_s >= max_queue_delay_s:
        return BatchPlan(tuple(take), 0.0)
    return BatchPlan((), max_queue_delay_s - waited_s)


#: upper bounds of the queue-time distribution, seconds (the last bucket is +Inf)
QUEUE_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class BatchStats:
    """Counters since the batcher started (Triton's model statistics)."""

    #: requests that got their results
    requests: int = 0
    #: rows (inferences) in those requests
    rows: int = 0
    #: model executions; requests / executions is the mean number of callers merged
    executions: int = 0
    failed: int = 0
    timed_out: int = 0
    cancelled: int = 0
    #: time requests spent queued and time executions took, summed, in nanoseconds
    queue_ns: int = 0
    compute_ns: int = 0
    #: time.time_ns() of the last execution's end (0 when none)
    last_inference_ns: int = 0
    #: executions by batch size (rows)
    batch_sizes: dict[int, int] = field(default_factory=dict)
    #: requests by queue time: counts per upper bound of QUEUE_BUCKETS_S (cumulative when exported)
    queue_buckets: list[int] = field(default_factory=lambda: [0] * (len(QUEUE_BUCKETS_S) + 1))

    def observe_queue(self, queued_s: float) -> None:
        self.queue_buckets[bisect.bisect_left(QUEUE_BUCKETS_S, queued_s)] += 1


@dataclass(eq=False)
class _Request:
    inputs: Arrays
    rows: int
    key: Hashable
    enqueued_s: float
    future: asyncio.Future[Arrays]
    started: bool = False


def _rows_and_key(inputs: Arrays) -> tuple[int, Hashable]:
    if not inputs:
        raise InvalidRequest("a request needs at least one input")
    rows = {name: a.shape[0] if a.ndim else 0 for name, a in inputs.items()}
    counts = set(rows.values())
    if len(counts) != 1 or 0 in counts:
        raise InvalidRequest(f"every input needs the same batch size >= 1 as first dimension, got {rows}")
    key = tuple(sorted((name, a.dtype.str, a.shape[1:]) for name, a in inputs.items()))
    return counts.pop(), key


class DynamicBatcher:
    """Merges concurrent `submit`s into executions of `run` (called in a thread with the merged inputs)."""

    def __init__(
        self,
        run: Callable[[Arrays], Arrays],
        max_batch_size: int,
        max_queue_delay_s: float,
        instances: int = 1,
        max_queue: int = DEFAULT_MAX_QUEUE,
        clock: Callable[[], float] = time.monotonic,
        name: str = "model",
        stats: BatchStats | None = None,
    ) -> None:
        if max_batch_size < 1 or instances < 1 or max_queue < 1 or max_queue_delay_s < 0:
            raise ValueError("max_batch_size, instances and max_queue must be >= 1, the delay >= 0")
        self.max_batch_size = max_batch_size
        self.max_queue_delay_s = max_queue_delay_s
        self.name = name
        #: may be shared with an earlier batcher of the same version, so counters survive an unload
        self.stats = stats if stats is not None else BatchStats()
        self._run = run
        self._max_queue = max_queue
        self._clock = clock
        self._queue: deque[_Request] = deque()
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(instances)
        self._executor = ThreadPoolExecutor(instances, thread_name_prefix=f"batcher-{name}")
        self._running: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def queued(self) -> int:
        return sum(1 for r in self._queue if not r.future.done())

    @property
    def busy(self) -> bool:
        """Whether requests are queued or executing (an unloader must leave this model alone)."""
        return bool(self._running) or self.queued > 0

    async def submit(self, inputs: Arrays, timeout_s: float | None = None) -> Arrays:
        """This request's outputs (its own rows only). JobTimeout when it did not start within
        `timeout_s`; ServiceUnavailable when the queue is full or the batcher closed."""
        rows, key = _rows_and_key(inputs)
        if self._closed:
            raise ServiceUnavailable(f"{self.name}: the model is being unloaded; retry")
        if self.queued >= self._max_queue:
            raise ServiceUnavailable(f"{self.name}: {self._max_queue} requests already queued; retry later")
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._loop(), name=f"batcher-{self.name}")
        request = _Request(inputs, rows, key, self._clock(), asyncio.get_running_loop().create_future())
        self._queue.append(request)
        self._wakeup.set()
        try:
            if timeout_s is None:
                return await asyncio.shield(request.future)
            try:
                return await asyncio.wait_for(asyncio.shield(request.future), timeout_s)
            except TimeoutError:
                if request.started:  # too late to drop: its batch is running
                    return await asyncio.shield(request.future)
                request.future.cancel()
                self.stats.timed_out += 1
                raise JobTimeout(f"{self.name}: the request did not start within {timeout_s:g} s") from None
        except asyncio.CancelledError:
            if not request.started:
                self.stats.cancelled += 1
            request.future.cancel()
            raise

    async def close(self) -> None:
        """Refuse new requests, fail queued ones, wait for running executions, stop the thread."""
        self._closed = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for request in self._queue:
            if not request.future.done():
                request.future.set_exception(ServiceUnavailable(f"{self.name}: the model was unloaded; retry"))
        self._queue.clear()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        self._executor.shutdown(wait=False)

    async def _loop(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                batch = await self._next_batch()
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.get_running_loop().create_task(self._execute(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _next_batch(self) -> list[_Request]:
        while True:
            # a cancelled or timed-out caller's request leaves here, before it is ever batched
            self._queue = deque(r for r in self._queue if not r.future.done())
            plan = plan_batch(self._queue, self._clock(), self.max_batch_size, self.max_queue_delay_s)
            if plan.take:
                batch = [self._queue[i] for i in plan.take]
                for i in reversed(plan.take):
                    del self._queue[i]
                for request in batch:
                    request.started = True
                return batch
            self._wakeup.clear()
            if not self._queue:
                await self._wakeup.wait()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), plan.wait_s)

    async def _execute(self, batch: list[_Request]) -> None:
        try:
            start_s = self._clock()
            total = sum(r.rows for r in batch)
            names = list(batch[0].inputs)
            merged = (
                batch[0].inputs
                if len(batch) == 1
                else {n: np.concatenate([r.inputs[n] for r in batch]) for n in names}
            )
            outputs = await asyncio.get_running_loop().run_in_executor(self._executor, self._run, merged)
            for out_name, out in outputs.items():
                # the invariant that lets each caller get exactly its own rows
                if out.ndim == 0 or out.shape[0] != total:
                    raise RuntimeError(
                        f"{self.name}: output {out_name!r} has shape {out.shape} for a batch of {total} rows"
                    )
            end_s = self._clock()
            self.stats.executions += 1
            self.stats.batch_sizes[total] = self.stats.batch_sizes.get(total, 0) + 1
            self.stats.compute_ns += int((end_s - start_s) * 1e9)
            self.stats.last_inference_ns = time.time_ns()
            offset = 0
            for request in batch:
                own = {n: o[offset : offset + request.rows] for n, o in outputs.items()}
                offset += request.rows
                self.stats.queue_ns += int((start_s - request.enqueued_s) * 1e9)
                self.stats.observe_queue(start_s - request.enqueued_s)
                if not request.future.done():
                    request.future.set_result(own)
                    self.stats.requests += 1
                    self.stats.rows += request.rows
        except Exception as exc:
            self.stats.failed += len(batch)
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)
        finally:
            self._slots.release()
