"""The media child: runs jobs' pipelines in a process of its own, so a crash, hang or runaway native call
fails that job only, and the supervising worker keeps its heartbeat.

The child is warm: it stays up between jobs (imports done, models loaded) and takes the next job's spec
over the same pipe, until its parent retires it (after `child_max_jobs` jobs, or after any job that did
not end cleanly: a stop, a crash, an unexpected exception). Messages, each a tuple:

    parent -> child: ("run", ChildSpec)
    child -> parent: ("progress", frames_done, frames_total | None)
                     ("done", RunResult)
                     ("error", code, message, retryable)

The parent stops a job (cancel, timeout, drain) with SIGTERM, which sets that job's stop event; a child
that was asked to stop is never given another job. A Ctrl-C reaches the parent only.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from framequeue.errors import FrameQueueError
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.base import MediaLimits, Progress, RunContext
from framequeue.pipelines.registry import get_pipeline

#: modules the fork server imports once, so each child starts warm
PRELOAD = ["framequeue.worker.sandbox", "numpy", "av", "cv2", "onnxruntime"]


@dataclass(frozen=True)
class ChildSpec:
    pipeline: str
    params: dict[str, Any]
    input_path: Path
    output_dir: Path
    model_repo: Path
    threads: int
    limits: MediaLimits


def child_main(conn: Connection) -> None:
    """Run jobs from the pipe until it closes. (A multiprocessing.Event would do for stop, but setting one
    whose waiter has died blocks forever; SIGTERM cannot.)"""
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    send_lock = threading.Lock()

    def send(msg: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(msg)

    try:
        while not stop.is_set():
            try:
                request = conn.recv()
            except (EOFError, OSError):
                return  # the parent retired this child, or died
            if request[0] != "run":
                return
            send(run_one(request[1], stop, send))
    finally:
        conn.close()


def run_one(spec: ChildSpec, stop: threading.Event, send: Any) -> tuple[Any, ...]:
    """One job's pipeline; returns its final message. Only an expected error keeps the child reusable:
    the parent retires a child after ("error", "internal_error" | "resource_exhausted", ...)."""
    try:
        pipeline = get_pipeline(spec.pipeline)
        ctx = RunContext(
            input_path=spec.input_path,
            output_dir=spec.output_dir,
            params=spec.params,
            models=ModelRepository(spec.model_repo),
            threads=spec.threads,
            on_progress=lambda p: send(("progress", p.frames_done, p.frames_total)),
            stop=stop,
            limits=spec.limits,
        )
        return ("done", pipeline.run(ctx))
    except FrameQueueError as exc:
        return ("error", exc.code, exc.message, exc.retryable)
    except MemoryError:
        return ("error", "resource_exhausted", "the job ran out of memory", False)
    except Exception as exc:  # a bug or an unexpected library error: retryable once more
        return ("error", "internal_error", f"{type(exc).__name__}: {exc}", True)


#: a job that ended with one of these leaves its child in a state not worth trusting with another job
UNCLEAN_ERRORS = frozenset({"internal_error", "resource_exhausted"})

__all__ = ["PRELOAD", "UNCLEAN_ERRORS", "ChildSpec", "Progress", "child_main", "run_one"]
