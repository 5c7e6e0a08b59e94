"""The "detect" pipeline: object detection on sampled frames, drawn on every frame of an H.264 copy.

Three stages run in threads joined by bounded queues, so decoding, inference and encoding overlap
and memory stays flat however long the video is:

    decode (+ sampling) -> [frames] -> inference (batches of sampled frames) -> [frames + boxes]
        -> render + encode + detections.json + contact sheet

Every blocking call polls the job's stop event and an internal failure event, so a stage that dies
never leaves another stuck on a full queue; the first error is raised by `run`, and a stop set by the
worker ends the run with JobCancelled within about a second.
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import IO, Any, ClassVar, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from framequeue.errors import InvalidParams, JobCancelled
from framequeue.media.annotate import annotate
from framequeue.media.decode import SampleClock, decode_frames
from framequeue.media.encode import DEFAULT_CRF, DEFAULT_PRESET, PRESETS, VideoEncoder
from framequeue.media.frames import Frame, VideoInfo
from framequeue.media.probe import probe
from framequeue.media.sheet import ContactSheet
from framequeue.models.backends import load_backend
from framequeue.models.base import Detections, InferenceBackend, ModelVersion
from framequeue.models.formats import ModelFormat, get_format
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.base import Progress, RunContext, RunResult

#: output name -> file name in the job's output folder
OUTPUTS: Final = {
    "video": "annotated.mp4",
    "detections": "detections.json",
    "contact_sheet": "contact_sheet.png",
}
DEFAULTS: Final[dict[str, Any]] = {
    "model": "yolox_nano",
    "model_version": None,
    "sample_fps": None,
    "score_threshold": 0.35,
    "nms_iou": 0.45,
    "classes": None,
    "batch_size": 4,
    "encode_preset": DEFAULT_PRESET,
    "crf": DEFAULT_CRF,
}
MAX_BATCH_SIZE: Final = 32
#: how often a blocked stage looks at the stop and failure events, seconds
POLL_S: Final = 0.1
#: shortest interval between two progress reports, seconds
PROGRESS_INTERVAL_S: Final = 0.2
#: frames each queue holds between two stages
QUEUE_FRAMES: Final = 8


class DetectPipeline:
    name: ClassVar[str] = "detect"
    version: ClassVar[str] = "1"

    def validate(self, params: Mapping[str, Any], models: ModelRepository) -> dict[str, Any]:
        """Params with defaults filled in and `model_version` pinned to the version that will run."""
        unknown = sorted(set(params) - set(DEFAULTS))
        if unknown:
            raise InvalidParams(f"{unknown[0]}: unknown parameter; known: {', '.join(DEFAULTS)}")
        p = {**DEFAULTS, **params}
        if not isinstance(p["model"], str):
            raise InvalidParams("model: must be a model name (string)")
        version = p["model_version"]
        if version is not None and (not _is_int(version) or version < 1):
            raise InvalidParams(f"model_version: must be an integer >= 1 or null, got {version!r}")
        model = models.get(p["model"], version)
        # pinned so a retry or a replay runs the same weights even after a newer version is added
        p["model_version"] = model.version
        if p["sample_fps"] is not None:
            p["sample_fps"] = _number(p, "sample_fps", low=0.0, low_open=True)
        p["score_threshold"] = _number(p, "score_threshold", low=0.0, high=1.0)
        p["nms_iou"] = _number(p, "nms_iou", low=0.0, high=1.0)
        classes = p["classes"]
        if classes is not None:
            if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
                raise InvalidParams("classes: must be a non-empty list of class names, or null for all")
            missing = [c for c in classes if c not in model.classes]
            if missing:
                raise InvalidParams(
                    f"classes: {', '.join(map(repr, missing))} not among the classes of "
                    f"{model.ref} ({', '.join(model.classes[:10])}, ...)"
                )
            p["classes"] = list(dict.fromkeys(classes))
        if not _is_int(p["batch_size"]) or not 1 <= p["batch_size"] <= MAX_BATCH_SIZE:
            raise InvalidParams(
                f"batch_size: must be an integer from 1 to {MAX_BATCH_SIZE}, got {p['batch_size']!r}"
            )
        if p["encode_preset"] not in PRESETS:
            raise InvalidParams(
                f"encode_preset: must be one of {', '.join(PRESETS)}, got {p['encode_preset']!r}"
            )
        if not _is_int(p["crf"]) or not 0 <= p["crf"] <= 51:
            raise InvalidParams(f"crf: must be an integer from 0 to 51, got {p['crf']!r}")
        return p

    def run(self, ctx: RunContext) -> RunResult:
        started = time.monotonic()
        params = self.validate(ctx.params, ctx.models)
        version = ctx.models.get(params["model"], params["model_version"])
        info = probe(ctx.input_path, ctx.limits)
        model = open_backend(version, ctx.model_url, stage_threads(ctx.threads).infer)
        try:
            fmt = get_format(version.format)(version.input_size_hw, len(version.classes))
            ctx.output_dir.mkdir(parents=True, exist_ok=True)
            return _DetectRun(ctx, params, version, info, model, fmt, started).execute()
        finally:
            model.close()


def open_backend(version: ModelVersion, url: str | None, threads: int) -> InferenceBackend:
    """In-process (ONNX Runtime or OpenVINO, as the version's config says), or the remote OIP v2 server
    at `url` (imported only then)."""
    if url is None:
        return load_backend(version, threads)
    from framequeue.models.remote import RemoteModel

    return RemoteModel(version, url)


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
    return StageThreads(
        decode=max(1, threads // 4), infer=infer, encode=max(1, threads - infer - threads // 4)
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(
    p: Mapping[str, Any], key: str, low: float, high: float = math.inf, low_open: bool = False
) -> float:
    value = p[key]
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bounds = f"{'>' if low_open else '>='} {low:g}" + (f" and <= {high:g}" if high != math.inf else "")
        raise InvalidParams(f"{key}: must be a number {bounds}, got {value!r}")
    return float(value)


class _Halted(Exception):
    """A stage leaves because the job was stopped or another stage failed."""


class _End:
    """End-of-stream marker passed down the queues."""


_END: Final = _End()


class _Flow:
    """Stop/failure signalling shared by the stages; every wait is a poll that can be interrupted."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.failed = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def check(self) -> None:
        if self.stop.is_set() or self.failed.is_set():
            raise _Halted

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
            except _Halted:
                pass
            except BaseException as exc:  # handed to run(), which raises it in the caller's thread
                self.fail(exc)

        thread = threading.Thread(target=body, name=f"detect-{name}", daemon=True)
        thread.start()
        return thread


class _DetectionsJson:
    """detections.json written as frames arrive: nothing but the current frame is held in memory."""

    def __init__(self, path: Path, head: dict[str, Any]) -> None:
        self._file: IO[str] = path.open("w", encoding="utf-8")
        self._first = True
        self._file.write(json.dumps(head)[:-1] + ', "frames": [')

    def frame(self, frame: Frame, detections: Detections, class_names: tuple[str, ...]) -> None:
        boxes = np.round(detections.xyxy.astype(np.float64), 1).tolist()
        scores = np.round(detections.score.astype(np.float64), 4).tolist()
        record = {
            "frame": frame.index,
            "time_s": round(frame.time_s, 6),
            "detections": [
                {"xyxy": box, "class_id": cid, "class": class_names[cid], "score": score}
                for box, cid, score in zip(boxes, detections.class_id.tolist(), scores, strict=True)
            ],
        }
        self._file.write(("\n" if self._first else ",\n") + json.dumps(record))
        self._first = False

    def finish(self, tail: dict[str, Any]) -> None:
        self._file.write("\n], " + json.dumps(tail)[1:] + "\n")
        self._file.close()

    def abort(self) -> None:
        self._file.close()


class _DetectRun:
    """State of one run: the three stages, their queues and their timings."""

    def __init__(
        self,
        ctx: RunContext,
        params: dict[str, Any],
        version: ModelVersion,
        info: VideoInfo,
        model: InferenceBackend,
        fmt: ModelFormat,
        started: float,
    ) -> None:
        self.ctx, self.params, self.version, self.info = ctx, params, version, info
        self.model, self.fmt, self.started = model, fmt, started
        self.flow = _Flow(ctx.stop)
        self.frames: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_FRAMES)
        self.boxed: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_FRAMES)
        self.batch_size: int = params["batch_size"]
        #: submitted batches not yet decoded, oldest first: (future, scales, frames with their slots)
        self.in_flight: deque[tuple[Future[list[Any]], list[float], list[tuple[Frame, int | None]]]] = deque()
        #: frames the inference stage may hold while it fills a batch (sparse sampling)
        self.max_pending = max(2 * self.batch_size, QUEUE_FRAMES)
        classes = params["classes"]
        self.keep_class_ids = (
            None if classes is None else np.asarray([version.classes.index(c) for c in classes], np.int64)
        )
        self.stats: dict[str, float] = dict.fromkeys(
            ("decode_s", "preprocess_s", "infer_s", "postprocess_s", "render_s", "encode_s"), 0.0
        )
        self.frames_decoded = 0
        self.frames_inferred = 0
        self.batches = 0
        #: frames encoded so far; read by the caller's thread for progress
        self.frames_done = 0
        self.completed = False
        self.parts = {key: ctx.output_dir / (name + ".part") for key, name in OUTPUTS.items()}

    def execute(self) -> RunResult:
        threads = [
            self.flow.start("decode", self._decode_stage),
            self.flow.start("infer", self._infer_stage),
            self.flow.start("output", self._output_stage),
        ]
        total = self.info.frames_declared
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
            self._discard_parts()
            if self.flow.error is not None:
                raise self.flow.error
            raise JobCancelled("stopped while processing the video")
        for key, name in OUTPUTS.items():
            self.parts[key].replace(self.ctx.output_dir / name)
        self.ctx.on_progress(Progress(self.frames_done, self.frames_done))
        wall_s = time.monotonic() - self.started
        self.stats.update(
            wall_s=wall_s, batches=float(self.batches), fps=self.frames_done / max(wall_s, 1e-9)
        )
        return RunResult(
            outputs=dict(OUTPUTS),
            primary="detections",
            frames_total=self.frames_done,
            frames_inferred=self.frames_inferred,
            stats={k: round(v, 4) for k, v in self.stats.items()},
        )

    def _discard_parts(self) -> None:
        for part in self.parts.values():
            part.unlink(missing_ok=True)

    def _decode_stage(self) -> None:
        clock = SampleClock(self.params["sample_fps"])
        frames = decode_frames(self.ctx.input_path, self.info, stage_threads(self.ctx.threads).decode)
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
            frames.close()
        self.flow.put(self.frames, _END)

    def _infer_stage(self) -> None:
        net_h, net_w = self.version.input_size_hw
        batch: npt.NDArray[np.float32] = np.empty((self.batch_size, 3, net_h, net_w), np.float32)
        scales = [1.0] * self.batch_size
        #: frames held until their batch is inferred, with their slot in `batch` (None: not sampled)
        pending: list[tuple[Frame, int | None]] = []
        filled = 0
        while True:
            item = self.flow.get(self.frames)
            if item is _END:
                break
            frame, sampled = item
            if not sampled and filled == 0:
                # nothing waits for a batch: the frame can go on at once with the boxes carried forward
                self.flow.put(self.boxed, (frame, None))
                continue
            slot = None
            if sampled:
                t0 = time.monotonic()
                scales[filled] = self.fmt.preprocess(frame.image, batch[filled])
                self.stats["preprocess_s"] += time.monotonic() - t0
                slot, filled = filled, filled + 1
            pending.append((frame, slot))
            if filled == self.batch_size or len(pending) >= self.max_pending:
                self._flush(batch[:filled], scales, pending)
                pending, filled = [], 0
        if pending:
            self._flush(batch[:filled], scales, pending)
        while self.in_flight:
            self._complete()
        self.flow.put(self.boxed, _END)

    def _flush(
        self, batch: npt.NDArray[np.float32], scales: list[float], pending: list[tuple[Frame, int | None]]
    ) -> None:
        """Submit a batch; decode the oldest ones once more than the backend keeps in flight are out. With
        one in flight (in-process) the batch is decoded at once; a remote backend gets copies, as `batch`
        and `scales` are refilled while it works."""
        many = self.model.max_in_flight > 1
        t0 = time.monotonic()
        future = self.model.submit(batch.copy() if many else batch)
        self.stats["infer_s"] += time.monotonic() - t0
        self.in_flight.append((future, list(scales) if many else scales, pending))
        while len(self.in_flight) >= self.model.max_in_flight:
            self._complete()

    def _complete(self) -> None:
        future, scales, pending = self.in_flight.popleft()
        t0 = time.monotonic()
        while True:  # the wait watches the stop and failure signals like every other
            self.flow.check()
            try:
                outputs = future.result(timeout=POLL_S)
                break
            except FutureTimeout:
                continue
        t1 = time.monotonic()
        detections = [
            self.fmt.decode(
                [out[i] for out in outputs],
                scales[i],
                (frame.image.shape[0], frame.image.shape[1]),
                self.params["score_threshold"],
                self.params["nms_iou"],
                self.keep_class_ids,
            )
            for i, frame in enumerate(f for f, slot in pending if slot is not None)
        ]
        self.stats["infer_s"] += t1 - t0
        self.stats["postprocess_s"] += time.monotonic() - t1
        self.batches += 1
        for frame, slot in pending:
            self.flow.put(self.boxed, (frame, None if slot is None else detections[slot]))

    def _output_stage(self) -> None:
        info, version = self.info, self.version
        sheet = ContactSheet(info.frames_declared)
        head = {
            "pipeline": DetectPipeline.name,
            "pipeline_version": DetectPipeline.version,
            "model": {"name": version.name, "version": version.version},
            # where this attempt ran the model: `local` (in-process) or the OIP v2 server's URL
            "model_endpoint": self.ctx.model_url or "local",
        }
        encoder = VideoEncoder(
            self.parts["video"],
            info.resolution_wh,
            info.rate,
            info.time_base,
            preset=self.params["encode_preset"],
            crf=self.params["crf"],
            threads=stage_threads(self.ctx.threads).encode,
        )
        try:
            writer = _DetectionsJson(self.parts["detections"], head)
        except BaseException:
            encoder.abort()
            raise
        current = Detections.empty()
        try:
            while True:
                item = self.flow.get(self.boxed)
                if item is _END:
                    break
                frame, detections = item
                if detections is not None:
                    current = detections
                    writer.frame(frame, detections, version.classes)
                    self.frames_inferred += 1
                t0 = time.monotonic()
                # boxes of the last sampled frame stay on screen until the next sampled frame
                annotate(frame.image, current, version.classes)
                sheet.offer(frame, frame.image)
                t1 = time.monotonic()
                encoder.write(frame.image, frame.pts)
                self.stats["render_s"] += t1 - t0
                self.stats["encode_s"] += time.monotonic() - t1
                self.frames_done += 1
            t0 = time.monotonic()
            encoder.close()
            self.stats["encode_s"] += time.monotonic() - t0
            if self.frames_done != self.frames_decoded:
                raise RuntimeError(f"encoded {self.frames_done} frames of {self.frames_decoded} decoded")
            writer.finish({"video": self._video_summary()})
            sheet.save(self.parts["contact_sheet"])
        except BaseException:
            encoder.abort()
            writer.abort()
            raise
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
