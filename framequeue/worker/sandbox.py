"""The media child: runs jobs' pipelines in a process of its own, so a crash, hang or runaway native call
fails that job only, and the supervising worker keeps its heartbeat.

The child is warm: it stays up between jobs (imports done, models loaded) and takes the next job's spec
over the same pipe, until its parent retires it (after `child_max_jobs` jobs, or after any job that did
not end cleanly: a stop, a crash, an unexpected exception). The messages: framequeue.worker.messages.

The parent stops a job (cancel, timeout, drain) with SIGTERM, which sets that job's stop event; a child
that was asked to stop is never given another job. A Ctrl-C reaches the parent only.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import math
import resource
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from framequeue.errors import FrameQueueError, ResourceExhausted
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.base import RunContext, SegmentSpan
from framequeue.pipelines.params import SEGMENT_PARAM
from framequeue.pipelines.registry import get_pipeline
from framequeue.worker.messages import ChildMessage, ChildSpec, Done, Failed, Progress, Run

#: modules the fork server imports once, so each child starts warm
PRELOAD = [
    "framequeue.worker.sandbox",
    "numpy",
    "av",
    "cv2",
    "onnxruntime",
    # the overlay pipelines' tracker and timeline (scipy's assignment, matplotlib's Agg: ~0.5 s per cold import)
    "scipy.optimize",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
]


#: how the child sends a message to its parent (one sender at a time: progress comes from pipeline threads)
Send = Callable[[ChildMessage], None]

#: a job that ended with one of these leaves its child in a state not worth trusting with another job
UNCLEAN_ERRORS = frozenset({FrameQueueError.code, ResourceExhausted.code})


def child_main(conn: Connection, memory_mb: int = 0) -> None:
    """Run jobs from the pipe until it closes. (A multiprocessing.Event would do for stop, but setting one
    whose waiter has died blocks forever; SIGTERM cannot.) `memory_mb` caps the address space (RLIMIT_AS):
    an allocation past it raises MemoryError (or ENOMEM in native code) instead of waking the OOM killer."""
    # what the fork server preloaded (PyAV, OpenCV, ONNX Runtime, SciPy, Matplotlib...) lives as long as the
    # child: keep it out of every collection, so release_memory's collection after each job scans only what
    # that job made (with it, ~40 ms of CPU a job: a no-op job's whole cost several times over)
    gc.freeze()
    stop = threading.Event()
    cpu_exceeded = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def on_sigxcpu(*_: Any) -> None:
        # past the job's CPU time: stop it at its next frame; the next SIGXCPU (the kernel sends one per
        # CPU-second past the limit) ends the process, should a native call never give the stop a chance
        cpu_exceeded.set()
        stop.set()
        signal.signal(signal.SIGXCPU, signal.SIG_DFL)

    signal.signal(signal.SIGXCPU, on_sigxcpu)
    if memory_mb > 0:
        cap = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    send_lock = threading.Lock()

    def send(msg: ChildMessage) -> None:
        with send_lock:
            conn.send(msg)

    try:
        while not stop.is_set():
            try:
                request = conn.recv()
            except (EOFError, OSError):
                return  # the parent retired this child, or died
            if not isinstance(request, Run):
                return
            send(run_one(request.spec, stop, send, cpu_exceeded))
    finally:
        conn.close()


def run_one(
    spec: ChildSpec, stop: threading.Event, send: Send, cpu_exceeded: threading.Event | None = None
) -> Done | Failed:
    """One job's pipeline; returns its final message. Only an expected error keeps the child reusable:
    the parent retires a child after a Failed whose code is in UNCLEAN_ERRORS."""
    if spec.cpu_budget_s > 0:
        # the child is warm: its CPU clock runs on from earlier jobs, so the limit is what it used so far
        # plus this job's budget (the hard limit stays, so the next job can raise the soft one again)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = math.ceil(usage.ru_utime + usage.ru_stime + spec.cpu_budget_s)
        resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))
    reply = _run_pipeline(spec, stop, send)
    release_memory()
    if cpu_exceeded is not None and cpu_exceeded.is_set():
        return Failed.of(ResourceExhausted(f"the job used more than its {spec.cpu_budget_s:.0f} s of CPU time"))
    return reply


def release_memory() -> None:
    """Give the memory a finished job freed back to the system, so a warm child does not grow job after job.

    glibc keeps freed heap memory in its arenas; each job's ONNX Runtime sessions, frames and encoder leave
    holes there, and a child that served 6 road jobs held 461 MiB, 221 MiB after `malloc_trim` (measured:
    BENCHMARKS.md, the road pipeline's memory). Elsewhere than glibc this does nothing."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _run_pipeline(spec: ChildSpec, stop: threading.Event, send: Send) -> Done | Failed:
    try:
        pipeline = get_pipeline(spec.pipeline)
        params = dict(spec.params)
        block = params.pop(SEGMENT_PARAM, None)  # a segment job's place in the whole video
        ctx = RunContext(
            input_path=spec.input_path,
            output_dir=spec.output_dir,
            params=params,
            models=ModelRepository(spec.model_repo),
            threads=spec.threads,
            on_progress=lambda p: send(Progress.of(p.frames_done, p.frames_total)),
            stop=stop,
            limits=spec.limits,
            model_url=spec.model_url,
            segment=None if block is None else SegmentSpan.from_params(block),
        )
        return Done.of(pipeline.run(ctx))
    except FrameQueueError as exc:
        return Failed.of(exc)
    except MemoryError:
        return Failed.of(ResourceExhausted("the job ran out of memory (the media process's cap)"))
    except OSError as exc:
        if exc.errno == errno.ENOSPC:  # the worker's scratch disk: nothing of this attempt is committed
            return Failed.of(scratch_full(exc))
        return Failed.of(FrameQueueError(f"{type(exc).__name__}: {exc}"), retryable=True)
    except Exception as exc:  # a bug or an unexpected library error (internal_error): retryable once more
        return Failed.of(FrameQueueError(f"{type(exc).__name__}: {exc}"), retryable=True)


def scratch_full(exc: OSError) -> ResourceExhausted:
    """ENOSPC on the worker's scratch disk, in the child or in the worker's own fetch."""
    return ResourceExhausted(f"the worker's scratch disk is full: {exc.strerror}")


__all__ = ["PRELOAD", "UNCLEAN_ERRORS", "child_main", "release_memory", "run_one", "scratch_full"]
