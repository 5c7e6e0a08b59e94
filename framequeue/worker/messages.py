"""What the worker and its media child say to each other over their pipe.

    worker -> child:  Run(spec)
    child -> worker:  Progress(frames_done, frames_total), while the job runs
                      Done(result) or Failed(code, message, retryable), once, at its end

Each message is a NamedTuple whose first field names its kind: typed and immutable on both sides, and
on the pipe the plain tuple it has always been (`("error", code, message, retryable)`), so it pickles
by value and a reader may match on the kind alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from framequeue.errors import FrameQueueError
from framequeue.media.limits import MediaLimits
from framequeue.pipelines.base import RunResult


@dataclass(frozen=True)
class ChildSpec:
    """One job as the media child runs it."""

    pipeline: str
    params: dict[str, Any]
    input_path: Path
    output_dir: Path
    model_repo: Path
    threads: int
    limits: MediaLimits
    #: CPU seconds (all threads) this job may use; 0: no limit. Set as RLIMIT_CPU at the job's start
    cpu_budget_s: float = 0.0
    #: RunContext.model_url
    model_url: str | None = None


class Run(NamedTuple):
    """Run this job (the child's next one)."""

    kind: Literal["run"]
    spec: ChildSpec

    @classmethod
    def of(cls, spec: ChildSpec) -> Run:
        return cls("run", spec)


class Progress(NamedTuple):
    """How far the job in hand is; frames_total is None while unknown."""

    kind: Literal["progress"]
    frames_done: int
    frames_total: int | None

    @classmethod
    def of(cls, frames_done: int, frames_total: int | None) -> Progress:
        return cls("progress", frames_done, frames_total)


class Done(NamedTuple):
    """The job's pipeline ran to its end; its outputs are in the spec's output_dir."""

    kind: Literal["done"]
    result: RunResult

    @classmethod
    def of(cls, result: RunResult) -> Done:
        return cls("done", result)


class Failed(NamedTuple):
    """The attempt ended with an error of framequeue.errors' tree (its stable `code`); `retryable`
    says whether another attempt could succeed."""

    kind: Literal["error"]
    code: str
    message: str
    retryable: bool

    @classmethod
    def of(cls, error: FrameQueueError, *, retryable: bool | None = None) -> Failed:
        """The error as a message; `retryable` overrides the error class's own say."""
        return cls("error", error.code, error.message, error.retryable if retryable is None else retryable)


#: what the child sends back
ChildMessage = Progress | Done | Failed

__all__ = ["ChildMessage", "ChildSpec", "Done", "Failed", "Progress", "Run"]
