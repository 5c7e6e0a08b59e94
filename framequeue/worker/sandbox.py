"""The media child: runs one job's pipeline in its own process, so a crash, hang or runaway native call
fails that job only, and the supervising worker keeps its heartbeat.

Messages to the parent over a Pipe, each a tuple:
    ("progress", frames_done, frames_total | None)
    ("done", RunResult)
    ("error", code, message, retryable)
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

#: modules the fork server imports once, so each job's child starts warm
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


def child_main(spec: ChildSpec, conn: Connection) -> None:
    """The parent asks the child to stop (cancel, timeout, drain) with SIGTERM; a Ctrl-C reaches the parent
    only. (A multiprocessing.Event would do, but setting one whose waiter has died blocks forever.)"""
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    send_lock = threading.Lock()

    def send(msg: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(msg)

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
        result = pipeline.run(ctx)
        send(("done", result))
    except FrameQueueError as exc:
        send(("error", exc.code, exc.message, exc.retryable))
    except MemoryError:
        send(("error", "resource_exhausted", "the job ran out of memory", False))
    except Exception as exc:  # a bug or an unexpected library error: retryable once more
        send(("error", "internal_error", f"{type(exc).__name__}: {exc}", True))
    finally:
        conn.close()


__all__ = ["PRELOAD", "ChildSpec", "Progress", "child_main"]
