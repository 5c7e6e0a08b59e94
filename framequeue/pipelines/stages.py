"""The staged video run every model pipeline shares: decode -> batched inference -> the pipeline's own
per-frame work + render + encode, in three threads joined by bounded queues.

    decode (+ sampling) -> [frames] -> inference (each model, batches of sampled frames)
        -> [frames + results] -> sink (domain logic, drawing, JSON) + contact sheet + H.264 encode

Decoding, inference and encoding overlap and memory stays flat however long the video is. Every blocking
call polls the job's stop event and an internal failure event, so a stage that dies never leaves another
stuck on a full queue; the first error is raised by `run_stages`, and a stop set by the worker ends the run
with JobCancelled within about a second. A pipeline supplies its models as `Predictor`s and its per-frame
logic as a `FrameSink`; everything else (threads, queues, progress, the video and the contact sheet, the
`.part` files that become outputs only when the run completes) is here.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from framequeue.errors import JobCancelled
from framequeue.media.decode import SampleClock, decode_frames
from framequeue.media.encode import VideoEncoder
from framequeue.media.frames import Frame, VideoInfo
from framequeue.media.probe import STILL_FORMATS
from framequeue.media.sheet import ContactSheet
from framequeue.models.runtimes import InferenceBackend, load_backend
from framequeue.models.version import ModelVersion
from framequeue.pipelines.base import Progress, RunContext, RunResult

#: how often a blocked stage looks at the stop and failure events, seconds
POLL_S: Final = 0.1
#: shortest interval between two progress reports, seconds
PROGRESS_INTERVAL_S: Final = 0.2
#: frames each queue holds between two stages
QUEUE_FRAMES: Final = 8
#: output keys the stages write themselves; every other output belongs to the sink
VIDEO_OUTPUT: Final = "video"
SHEET_OUTPUT: Final = "contact_sheet"


class StageThreads(NamedTuple):
    decode: int
    infer: int
    encode: int


def stage_threads(threads: int) -> StageThreads:
    """Split the job's thread budget between the stages' native pools.

    The three stages already run at once, so each pool gets a share rather than the whole budget:
    on 2 cores, 1/1/1 keeps both cores busy, while a second ONNX Runtime thread bought ~3 % speed for
    ~70 % more CPU and a second decoder thread cost CPU for nothing (measured on YOLOX-nano, 540p).
    """
    infer = max(1, threads // 2)
    return StageThreads(decode=max(1, threads // 4), infer=infer, encode=max(1, threads - infer - threads // 4))


def open_backend(version: ModelVersion, url: str | None, threads: int) -> InferenceBackend:
    """In-process (ONNX Runtime, OpenVINO or LiteRT, as the version's config says), or the remote OIP v2 server
    at `url` (imported only then)."""
    if url is None:
        return load_backend(version, threads)
    from framequeue.models.remote import RemoteModel

    return RemoteModel(version, url)


@contextmanager
def opened_backends(*models: tuple[ModelVersion, str | None, int]) -> Iterator[list[InferenceBackend]]:
    """`open_backend` for each (version, url, threads), all closed on leaving (those opened, if one fails)."""
    with ExitStack() as stack:
        backends = []
        for version, url, threads in models:
            backend = open_backend(version, url, threads)
            stack.callback(backend.close)
            backends.append(backend)
        yield backends


@dataclass(frozen=True)
class Predictor:
    """One model run on the sampled frames: how to fill its input and read one frame's result."""

    #: names the model in stats (`infer_<key>_s`) and orders the results handed to the sink
    key: str
    backend: InferenceBackend
    #: writes HxWx3 BGR into the 3xHxW network input, returns what `decode` needs to map back (a scale)
    preprocess: Callable[[npt.NDArray[np.uint8], npt.NDArray[np.float32]], Any]
    #: (one frame's raw outputs, preprocess's return, image (h, w)) -> the frame's result
    decode: Callable[[list[npt.NDArray[np.float32]], Any, tuple[int, int]], Any]

    @property
    def input_chw(self) -> tuple[int, int, int]:
        height, width = self.backend.version.input_size_hw
        return (3, height, width)


class FrameSink(Protocol):
    """A pipeline's own per-frame work, run in the output stage in presentation order."""

    #: seconds spent in the sink by name (`track_s`, `draw_s`, ...), merged into the run's stats
    stats: dict[str, float]

    def frame(self, frame: Frame, results: Sequence[Any] | None) -> None:
        """Handle one frame: `results` holds one result per predictor (in their order) on an inferred frame,
        None on a frame between two inferred ones. Draw the overlay on `frame.image` in place."""
        ...

    def finish(self, video: Mapping[str, Any]) -> Sequence[Mapping[str, Any]] | None:
        """Every frame was handled and encoded: complete the sink's own output files (`video` is the summary
        of the written video: size, rate, frame count); return the events the run found (RunResult.events),
        None for a pipeline without events."""
        ...

    def abort(self) -> None:
        """The run failed or stopped: release files; no output is kept."""
        ...


def warm_sink(sink: FrameSink, frame: Frame, results: Sequence[Any] | None) -> None:
    """A segment's lead-in frame (RunContext.segment): a sink with a `warm(frame, results)` method takes its
    state from it (the last boxes, a tracker's tracks) without drawing or writing; any other sink skips it."""
    warm = getattr(sink, "warm", None)
    if warm is not None:
        warm(frame, results)


def global_frames(frames: Iterator[Frame], info: VideoInfo, ctx: RunContext) -> Iterator[Frame]:
    """A segment's frames numbered as the whole video's (index and pts), ending after its last output frame;
    a whole video's as they are."""
    span = ctx.segment
    if span is None:
        yield from frames
        return
    index0 = span.first_frame - span.lead_in_frames
    pts0 = round(span.lead_in_start_s / info.time_base)
    end = span.first_frame + span.frames
    for frame in frames:
        if frame.index + index0 >= end:
            return
        yield dataclasses.replace(frame, index=frame.index + index0, pts=frame.pts + pts0)


#: builds the sink once the output folder exists: (output key -> .part path it must write) -> sink
SinkFactory = Callable[[Mapping[str, Path]], FrameSink]


@dataclass(frozen=True)
class StagedJob:
    """What a pipeline asks of the stages for one run."""

    #: the pipeline's name, which prefixes the stage threads' names (`detect-decode`)
    name: str
    #: output key -> file name; must hold VIDEO_OUTPUT and SHEET_OUTPUT, the others are the sink's
    outputs: Mapping[str, str]
    #: the output that is the job's answer
    primary: str
    predictors: Sequence[Predictor]
    sink: SinkFactory
    sample_fps: float | None
    batch_size: int
    encode_preset: str
    crf: int


def run_stages(ctx: RunContext, info: VideoInfo, job: StagedJob, started: float) -> RunResult:
    """Run the three stages over ctx.input_path; the outputs are in ctx.output_dir when this returns."""
    missing = {VIDEO_OUTPUT, SHEET_OUTPUT} - set(job.outputs)
    if missing:
        raise ValueError(f"a staged job writes {sorted(missing)} itself; name them in outputs")
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    return _StagedRun(ctx, info, job, started).execute()


class Halted(Exception):
    """A stage leaves because the job was stopped or another stage failed."""


class _End:
    """End-of-stream marker passed down the queues."""


END: Final = _End()


class Flow:
    """Stop/failure signalling shared by the stages; every wait is a poll that can be interrupted."""

    def __init__(self, stop: threading.Event, name: str = "stage") -> None:
        self.stop = stop
        self.name = name
        self.failed = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def check(self) -> None:
        if self.stop.is_set() or self.failed.is_set():
            raise Halted

    def put(self, q: queue.Queue[Any], item: object) -> None:
        while True:
            self.check()
            try:
                q.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def get(self, q: queue.Queue[Any]) -> Any:
        while True:
            self.check()
            try:
                return q.get(timeout=POLL_S)
            except queue.Empty:
                continue

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = exc
        self.failed.set()

    def start(self, name: str, target: Callable[[], None]) -> threading.Thread:
        def body() -> None:
            try:
                target()
            except Halted:
                pass
            except BaseException as exc:  # handed to execute(), which raises it in the caller's thread
                self.fail(exc)

        thread = threading.Thread(target=body, name=f"{self.name}-{name}", daemon=True)
        thread.start()
        return thread


class _Batch:
    """One predictor's input buffer, refilled batch after batch."""

    def __init__(self, predictor: Predictor, batch_size: int) -> None:
        self.predictor = predictor
        self.inputs: npt.NDArray[np.float32] = np.empty((batch_size, *predictor.input_chw), np.float32)
        self.metas: list[Any] = [None] * batch_size


#: one submitted batch: a future and the preprocess returns per predictor, and its frames with their slots
_InFlight = tuple[list[Future[list[npt.NDArray[np.float32]]]], list[list[Any]], list[tuple[Frame, int | None]]]


class _StagedRun:
    """State of one run: the three stages, their queues and their timings."""

    def __init__(self, ctx: RunContext, info: VideoInfo, job: StagedJob, started: float) -> None:
        self.ctx, self.info, self.job, self.started = ctx, info, job, started
        self.flow = Flow(ctx.stop, job.name)
        self.threads = stage_threads(ctx.threads)
        self.frames: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_FRAMES)
        self.boxed: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_FRAMES)
        self.batch_size = job.batch_size
        self.in_flight: deque[_InFlight] = deque()
        #: batches a predictor may keep outstanding: the smallest any of them allows
        self.max_in_flight = min((p.backend.max_in_flight for p in job.predictors), default=1)
        #: frames the inference stage may hold while it fills a batch (sparse sampling)
        self.max_pending = max(2 * self.batch_size, QUEUE_FRAMES)
        self.stats: dict[str, float] = dict.fromkeys(
            ("decode_s", "preprocess_s", "infer_s", "postprocess_s", "render_s", "encode_s"), 0.0
        )
        for p in job.predictors:
            self.stats[f"infer_{p.key}_s"] = 0.0
        if len(job.predictors) > 1:
            self.stats["infer_side_cpu_s"] = 0.0
        self.side_pool: ThreadPoolExecutor | None = None
        self.frames_decoded = 0
        self.frames_inferred = 0
        self.batches = 0
        #: frames encoded so far; read by the caller's thread for progress
        self.frames_done = 0
        self.completed = False
        #: the sink's events, once it finished
        self.events: list[dict[str, Any]] = []
        #: how many there were; None for a sink without events
        self.events_total: int | None = None
        self.parts = {key: ctx.output_dir / (name + ".part") for key, name in job.outputs.items()}

    def execute(self) -> RunResult:
        threads = [
            self.flow.start("decode", self._decode_stage),
            self.flow.start("infer", self._infer_stage),
            self.flow.start("output", self._output_stage),
        ]
        total = self.info.frames_declared if self.ctx.segment is None else self.ctx.segment.frames
        reported = -1
        try:
            while any(t.is_alive() for t in threads):
                threads[-1].join(PROGRESS_INTERVAL_S)
                done = self.frames_done
                if done != reported and not self.flow.failed.is_set() and not self.completed:
                    # progress is reported from the caller's thread, never from a stage
                    self.ctx.on_progress(Progress(done, total))
                    reported = done
        except BaseException as exc:
            self.flow.fail(exc)
            for t in threads:
                t.join()
        if self.flow.error is not None or not self.completed:
            for part in self.parts.values():
                part.unlink(missing_ok=True)
            if self.flow.error is not None:
                raise self.flow.error
            raise JobCancelled("stopped while processing the video")
        for key, name in self.job.outputs.items():
            self.parts[key].replace(self.ctx.output_dir / name)
        self.ctx.on_progress(Progress(self.frames_done, self.frames_done))
        wall_s = time.monotonic() - self.started
        self.stats.update(wall_s=wall_s, batches=float(self.batches), fps=self.frames_done / max(wall_s, 1e-9))
        return RunResult(
            outputs=dict(self.job.outputs),
            primary=self.job.primary,
            frames_total=self.frames_done,
            frames_inferred=self.frames_inferred,
            stats={k: round(v, 4) for k, v in self.stats.items()},
            events=self.events,
            video_s=None if self.info.container_format in STILL_FORMATS else self.frames_done / float(self.info.rate),
            events_total=self.events_total,
        )

    def _decode_stage(self) -> None:
        clock = SampleClock(self.job.sample_fps)
        span = self.ctx.segment
        if span is not None and span.lead_in_start_s > 0 and self.info.rate > 0:
            # the whole run's clock as it stood after the frame before this segment's first (a constant rate)
            first = round(span.lead_in_start_s / self.info.time_base) * self.info.time_base
            clock.take(first - 1 / self.info.rate)
        decoded = decode_frames(self.ctx.input_path, self.info, self.threads.decode)
        frames = global_frames(decoded, self.info, self.ctx)
        cpu0 = time.thread_time()
        try:
            while True:
                self.flow.check()
                t0 = time.monotonic()
                frame = next(frames, None)
                self.stats["decode_s"] += time.monotonic() - t0
                if frame is None:
                    break
                if self.frames_decoded == 0:
                    self.stats["first_frame_s"] = time.monotonic() - self.started
                self.frames_decoded += 1
                self.flow.put(self.frames, (frame, clock.take(frame.time)))
        finally:
            decoded.close()
            self.stats["decode_cpu_s"] = time.thread_time() - cpu0
        self.flow.put(self.frames, END)

    def _infer_stage(self) -> None:
        cpu0 = time.thread_time()
        # in-process models after the first run beside it, each in a thread of its own (their runtimes release
        # the GIL): the stage then takes as long as its slowest model, not the sum of them
        side = [p for p in self.job.predictors[1:] if p.backend.max_in_flight == 1]
        if side:
            self.side_pool = ThreadPoolExecutor(len(side), thread_name_prefix=f"{self.job.name}-infer")
        try:
            self._infer_loop()
        finally:
            self.stats["infer_cpu_s"] = time.thread_time() - cpu0
            if self.side_pool is not None:
                self.side_pool.shutdown(wait=True, cancel_futures=True)

    def _infer_loop(self) -> None:
        batches = [_Batch(p, self.batch_size) for p in self.job.predictors]
        #: frames held until their batch is inferred, with their slot in the batch (None: not sampled)
        pending: list[tuple[Frame, int | None]] = []
        filled = 0
        while True:
            item = self.flow.get(self.frames)
            if item is END:
                break
            frame, sampled = item
            if not batches or (not sampled and filled == 0):
                # nothing waits for a batch: the frame goes on at once (results carried by the sink)
                self.flow.put(self.boxed, (frame, () if sampled else None))
                continue
            slot = None
            if sampled:
                t0 = time.monotonic()
                for b in batches:
                    b.metas[filled] = b.predictor.preprocess(frame.image, b.inputs[filled])
                self.stats["preprocess_s"] += time.monotonic() - t0
                slot, filled = filled, filled + 1
            pending.append((frame, slot))
            if filled == self.batch_size or len(pending) >= self.max_pending:
                self._flush(batches, filled, pending)
                pending, filled = [], 0
        if pending:
            self._flush(batches, filled, pending)
        while self.in_flight:
            self._complete()
        self.flow.put(self.boxed, END)

    def _flush(self, batches: list[_Batch], filled: int, pending: list[tuple[Frame, int | None]]) -> None:
        """Submit a batch to every predictor; decode the oldest ones once more than the backends keep in
        flight are out. With one in flight (in-process) the batch is decoded at once; a remote backend gets
        copies, as the buffers are refilled while it works."""
        many = self.max_in_flight > 1
        futures: dict[int, Future[list[npt.NDArray[np.float32]]]] = {}
        # the side pool's models first, so they run while this thread runs its own
        for k, b in enumerate(batches):
            if k and self.side_pool is not None and b.predictor.backend.max_in_flight == 1:
                futures[k] = self.side_pool.submit(self._run_side, b.predictor, b.inputs[:filled])
        for k, b in enumerate(batches):
            if k not in futures:
                rows = b.inputs[:filled]
                t0 = time.monotonic()
                futures[k] = b.predictor.backend.submit(rows.copy() if many else rows)
                elapsed = time.monotonic() - t0
                self.stats["infer_s"] += elapsed
                self.stats[f"infer_{b.predictor.key}_s"] += elapsed
        metas = [list(b.metas[:filled]) for b in batches]
        self.in_flight.append(([futures[k] for k in range(len(batches))], metas, pending))
        while len(self.in_flight) >= self.max_in_flight:
            self._complete()

    def _run_side(self, predictor: Predictor, rows: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        """One in-process model's batch in the side pool; its time counts as that model's."""
        t0, cpu0 = time.monotonic(), time.thread_time()
        try:
            return predictor.backend.submit(rows).result()
        finally:
            self.stats[f"infer_{predictor.key}_s"] += time.monotonic() - t0
            self.stats["infer_side_cpu_s"] += time.thread_time() - cpu0

    def _complete(self) -> None:
        futures, metas, pending = self.in_flight.popleft()
        sampled = [frame for frame, slot in pending if slot is not None]
        per_model: list[list[Any]] = []
        for k, (predictor, future, meta) in enumerate(zip(self.job.predictors, futures, metas, strict=True)):
            t0 = time.monotonic()
            while True:  # the wait watches the stop and failure signals like every other
                self.flow.check()
                try:
                    outputs = future.result(timeout=POLL_S)
                    break
                except FutureTimeout:
                    continue
            t1 = time.monotonic()
            if k == 0 or self.side_pool is None:
                self.stats["infer_s"] += t1 - t0
                self.stats[f"infer_{predictor.key}_s"] += t1 - t0
            per_model.append(
                [
                    predictor.decode([out[i] for out in outputs], meta[i], (frame.image.shape[0], frame.image.shape[1]))
                    for i, frame in enumerate(sampled)
                ]
            )
            self.stats["postprocess_s"] += time.monotonic() - t1
        self.batches += 1
        for frame, slot in pending:
            results = None if slot is None else tuple(results[slot] for results in per_model)
            self.flow.put(self.boxed, (frame, results))

    def _output_stage(self) -> None:
        cpu0 = time.thread_time()
        try:
            self._output_loop()
        finally:
            self.stats["output_cpu_s"] = time.thread_time() - cpu0

    def _output_loop(self) -> None:
        info = self.info
        # a segment's frames are numbered as the whole video's: its sheet keeps every k-th (the stitch draws
        # the whole video's own)
        sheet = ContactSheet(info.frames_declared if self.ctx.segment is None else None)
        encoder = VideoEncoder(
            self.parts[VIDEO_OUTPUT],
            info.resolution_wh,
            info.rate,
            info.time_base,
            preset=self.job.encode_preset,
            crf=self.job.crf,
            threads=self.threads.encode,
            stitchable=self.ctx.segment is not None,  # the stitch concatenates the segments' MP4s
        )
        try:
            sink = self.job.sink({k: p for k, p in self.parts.items() if k not in (VIDEO_OUTPUT, SHEET_OUTPUT)})
        except BaseException:
            encoder.abort()
            raise
        span = self.ctx.segment
        first_frame = 0 if span is None else span.first_frame
        #: a segment's video starts at 0 (the stitch puts it in its place); its lead-in is not written
        pts0: int | None = None if span is not None else 0
        lead_in = 0
        try:
            while True:
                item = self.flow.get(self.boxed)
                if item is END:
                    break
                frame, results = item
                if frame.index < first_frame:
                    warm_sink(sink, frame, results)
                    lead_in += 1
                    continue
                if pts0 is None:
                    pts0 = frame.pts
                if results is not None:
                    self.frames_inferred += 1
                t0 = time.monotonic()
                sink.frame(frame, results)
                sheet.offer(frame, frame.image)
                t1 = time.monotonic()
                encoder.write(frame.image, frame.pts - pts0)
                self.stats["render_s"] += t1 - t0
                self.stats["encode_s"] += time.monotonic() - t1
                self.frames_done += 1
            t0 = time.monotonic()
            encoder.close()
            self.stats["encode_s"] += time.monotonic() - t0
            if self.frames_done + lead_in != self.frames_decoded:
                raise RuntimeError(f"encoded {self.frames_done} frames of {self.frames_decoded - lead_in} decoded")
            found = sink.finish(self._video_summary())
            self.events = [dict(e) for e in found or ()]
            self.events_total = None if found is None else len(self.events)
            sheet.save(self.parts[SHEET_OUTPUT])
        except BaseException:
            encoder.abort()
            sink.abort()
            raise
        finally:
            self.stats.update(sink.stats)
        self.completed = True

    def _video_summary(self) -> dict[str, Any]:
        info = self.info
        return {
            "width": info.width,
            "height": info.height,
            "fps": float(info.rate),
            "fps_fraction": f"{info.rate.numerator}/{info.rate.denominator}",
            "frames": self.frames_done,
            "duration_s": info.duration_s,
        }
