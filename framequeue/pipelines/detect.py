"""The "detect" pipeline: object detection on sampled frames, drawn on every frame of an H.264 copy.

The staged run (`pipelines.stages`: decode -> batched inference -> render + encode, bounded and
cancellable) does the video work; this module holds the params, the model and what is drawn and written
for each frame: the boxes of the last inferred frame, carried to the frames between two inferred ones, and
`detections.json` with one record per inferred frame. A still image (JPEG, PNG) is a one-frame video: the
same outputs (a one-frame MP4 among them), and its annotated frame as `annotated.png` (output `image`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final

import cv2
import numpy as np

from framequeue.errors import InvalidParams
from framequeue.media.annotate import annotate
from framequeue.media.frames import Frame
from framequeue.media.probe import STILL_FORMATS, probe
from framequeue.models.formats import get_format
from framequeue.models.predictions import Detections
from framequeue.models.repository import ModelRepository
from framequeue.models.version import ModelVersion
from framequeue.pipelines.base import RunContext, RunResult
from framequeue.pipelines.outputs import JsonStream
from framequeue.pipelines.params import ENCODE_DEFAULTS, check_encode, check_unknown, model_version, number
from framequeue.pipelines.stages import Predictor, StagedJob, open_backend, run_stages, stage_threads

#: output name -> file name in the job's output folder
OUTPUTS: Final = {
    "video": "annotated.mp4",
    "detections": "detections.json",
    "contact_sheet": "contact_sheet.png",
}
#: the output a still image adds: its annotated frame
IMAGE_OUTPUT: Final = ("image", "annotated.png")
DEFAULTS: Final[dict[str, Any]] = {
    "model": "yolox_nano",
    "model_version": None,
    "sample_fps": None,
    "score_threshold": 0.35,
    "nms_iou": 0.45,
    "classes": None,
    **ENCODE_DEFAULTS,
}


class DetectPipeline:
    name: ClassVar[str] = "detect"
    version: ClassVar[str] = "1"

    def validate(self, params: Mapping[str, Any], models: ModelRepository) -> dict[str, Any]:
        """Params with defaults filled in and `model_version` pinned to the version that will run."""
        check_unknown(params, DEFAULTS)
        p = {**DEFAULTS, **params}
        model = model_version(models, p["model"], p["model_version"], "model", "a detection model")
        # pinned so a retry or a replay runs the same weights even after a newer version is added
        p["model_version"] = model.version
        if p["sample_fps"] is not None:
            p["sample_fps"] = number(p["sample_fps"], "sample_fps", low=0.0, low_open=True)
        p["score_threshold"] = number(p["score_threshold"], "score_threshold", low=0.0, high=1.0)
        p["nms_iou"] = number(p["nms_iou"], "nms_iou", low=0.0, high=1.0)
        p["classes"] = class_names(p["classes"], model)
        check_encode(p)
        return p

    def run(self, ctx: RunContext) -> RunResult:
        started = time.monotonic()
        params = self.validate(ctx.params, ctx.models)
        version = ctx.models.get(params["model"], params["model_version"])
        info = probe(ctx.input_path, ctx.limits)
        model = open_backend(version, ctx.model_url, stage_threads(ctx.threads).infer)
        try:
            fmt = get_format(version.format)(version.input_size_hw, len(version.classes))
            keep = class_ids(params["classes"], version)

            def decode(outputs: list[Any], scale: float, image_hw: tuple[int, int]) -> Detections:
                return fmt.decode(outputs, scale, image_hw, params["score_threshold"], params["nms_iou"], keep)

            head = {
                "pipeline": self.name,
                "pipeline_version": self.version,
                "model": {"name": version.name, "version": version.version},
                # where this attempt ran the model: `local` (in-process) or the OIP v2 server's URL
                "model_endpoint": ctx.model_url or "local",
            }
            still = info.container_format in STILL_FORMATS
            job = StagedJob(
                name=self.name,
                outputs=dict([*OUTPUTS.items(), IMAGE_OUTPUT]) if still else OUTPUTS,
                primary="detections",
                predictors=[Predictor("detector", model, fmt.preprocess, decode)],
                sink=lambda parts: _DetectSink(parts["detections"], head, version.classes, parts.get("image")),
                sample_fps=params["sample_fps"],
                batch_size=params["batch_size"],
                encode_preset=params["encode_preset"],
                crf=params["crf"],
            )
            return run_stages(ctx, info, job, started)
        finally:
            model.close()


def class_names(classes: Any, model: ModelVersion, field: str = "classes") -> list[str] | None:
    """The `classes` param checked against the model's classes, duplicates dropped; None keeps all."""
    if classes is None:
        return None
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise InvalidParams(f"{field}: must be a non-empty list of class names, or null for all")
    missing = [c for c in classes if c not in model.classes]
    if missing:
        raise InvalidParams(
            f"{field}: {', '.join(map(repr, missing))} not among the classes of "
            f"{model.ref} ({', '.join(model.classes[:10])}, ...)"
        )
    return list(dict.fromkeys(classes))


def class_ids(classes: list[str] | None, model: ModelVersion) -> np.ndarray[Any, np.dtype[np.int64]] | None:
    return None if classes is None else np.asarray([model.classes.index(c) for c in classes], np.int64)


class _DetectSink:
    """Draws the boxes of the last inferred frame on every frame; one JSON record per inferred frame."""

    def __init__(
        self, path: Path, head: dict[str, Any], class_names: tuple[str, ...], image_path: Path | None = None
    ) -> None:
        #: detections: boxes over all inferred frames (the job record's detections_total)
        self.stats: dict[str, float] = {"detections": 0.0}
        self._json = JsonStream(path, head)
        self._names = class_names
        self._current = Detections.empty()
        #: a still's annotated frame goes here as a PNG
        self._image_path = image_path
        self._last: np.ndarray[Any, np.dtype[np.uint8]] | None = None

    def frame(self, frame: Frame, results: Sequence[Any] | None) -> None:
        if results is not None:
            (self._current,) = results
            self.stats["detections"] += len(self._current)
            self._json.write(detection_record(frame, self._current, self._names))
        # boxes of the last sampled frame stay on screen until the next sampled frame
        annotate(frame.image, self._current, self._names)
        if self._image_path is not None:
            self._last = frame.image

    def warm(self, frame: Frame, results: Sequence[Any] | None) -> None:
        """A segment's lead-in frame: its boxes stay on screen into the segment, as in the unsplit run."""
        if results is not None:
            (self._current,) = results

    def finish(self, video: Mapping[str, Any]) -> None:
        if self._image_path is not None:
            ok, png = cv2.imencode(".png", self._last) if self._last is not None else (False, None)
            if not ok or png is None:
                raise RuntimeError("the still's annotated frame could not be encoded as PNG")
            self._image_path.write_bytes(png.tobytes())
        self._json.finish({"video": dict(video)})

    def abort(self) -> None:
        self._json.abort()
        if self._image_path is not None:
            self._image_path.unlink(missing_ok=True)


def detection_record(frame: Frame, detections: Detections, class_names: tuple[str, ...]) -> dict[str, Any]:
    boxes = np.round(detections.xyxy.astype(np.float64), 1).tolist()
    scores = np.round(detections.score.astype(np.float64), 4).tolist()
    return {
        "frame": frame.index,
        "time_s": round(frame.time_s, 6),
        "detections": [
            {"xyxy": box, "class_id": cid, "class": class_names[cid], "score": score}
            for box, cid, score in zip(boxes, detections.class_id.tolist(), scores, strict=True)
        ],
    }
