"""The Pipeline protocol: what a worker's media child runs for one job.

A pipeline is code, registered by name and versioned so a job is reproducible. The worker calls
`validate` at submit time (through the service) and `run` inside the sandboxed media child.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from framequeue.media.limits import MediaLimits
from framequeue.models.repository import ModelRepository


@dataclass(frozen=True)
class Progress:
    frames_done: int
    #: None when the container does not say how many frames it holds
    frames_total: int | None


@dataclass(frozen=True)
class SegmentSpan:
    """A segment job's place in the whole video (framequeue.worker.split, from its params' `segment` block):
    its input starts `lead_in_frames` frames before its first output frame, at `lead_in_start_s` of the
    whole video. The staged run decodes and infers the lead-in (warming what carries state across frames)
    but neither draws nor writes it, and numbers frames and times as the whole video does."""

    first_frame: int
    frames: int
    lead_in_frames: int
    lead_in_start_s: float

    @classmethod
    def from_params(cls, block: Mapping[str, Any]) -> SegmentSpan:
        return cls(int(block["first_frame"]), int(block["frames"]), int(block["lead_in_frames"]),
                   float(block["lead_in_start_s"]))


@dataclass(frozen=True)
class RunContext:
    input_path: Path
    #: the pipeline writes its outputs here; RunResult.outputs names them
    output_dir: Path
    #: params as returned by Pipeline.validate
    params: Mapping[str, Any]
    models: ModelRepository
    #: CPU threads this job may use in total (ONNX Runtime intra-op, decoder, encoder)
    threads: int
    on_progress: Callable[[Progress], None]
    #: set by the worker to cancel; every stage watches it and the run raises JobCancelled
    stop: threading.Event
    limits: MediaLimits = field(default_factory=MediaLimits)
    #: where the job's model runs this attempt: None in-process, else the base URL of an OIP v2 server
    #: (chosen from the model endpoint registry when the worker claimed the job)
    model_url: str | None = None
    #: a segment job's span of the whole video; None for a whole video
    segment: SegmentSpan | None = None


@dataclass(frozen=True)
class RunResult:
    #: output name -> file name inside RunContext.output_dir
    outputs: dict[str, str]
    frames_total: int
    frames_inferred: int
    #: stage timings and counters, seconds in names ending _s
    stats: dict[str, float] = field(default_factory=dict)
    #: the output that is the job's answer (what an async endpoint writes to its OutputLocation); the first
    #: output when empty
    primary: str = ""
    #: what the pipeline found, each {type, start_s, end_s, ...numbers} ([] for a pipeline without events);
    #: the worker commits them with the outputs and the job record shows them
    events: list[dict[str, Any]] = field(default_factory=list)
    #: seconds of video processed: frames written / the video's average frame rate; None for a still image
    #: or a pipeline that does not process video
    video_s: float | None = None
    #: how many events the pipeline found (len(events)); None for a pipeline without events
    events_total: int | None = None

    @property
    def primary_output(self) -> str:
        return self.primary or next(iter(self.outputs))


def reads_input_in_place(pipeline: object) -> bool:
    """A pipeline's optional `reads_input_in_place: ClassVar[bool]`: it only reads its input file, never
    writes, moves or keeps it past its run, so a worker on a local object store hands it the store's own
    file instead of a scratch copy. False when absent."""
    return bool(getattr(pipeline, "reads_input_in_place", False))


class Pipeline(Protocol):
    name: ClassVar[str]
    version: ClassVar[str]

    def validate(self, params: Mapping[str, Any], models: ModelRepository) -> dict[str, Any]:
        """Return params with defaults filled in; raise InvalidParams or UnknownModel."""
        ...

    def run(self, ctx: RunContext) -> RunResult:
        """Process ctx.input_path; raise MediaError subclasses for bad input, JobCancelled on stop."""
        ...
