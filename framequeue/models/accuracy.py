"""The accuracy check `models add --runtime openvino` runs: OpenVINO at the chosen precision against
ONNX Runtime fp32 on one fixed frame, raw outputs and decoded detections.

Limits. bf16 keeps 8 bits of mantissa: the raw regressions of anchors nobody keeps move by whole
units (YOLOX-nano bf16 on a dashcam frame: max abs error 2.3, relative RMS 12 %), while the boxes that
are kept move by a pixel or two (IoU >= 0.93). So what is checked is what a user sees:

- detection and face formats: every box ONNX Runtime scores >= CONFIDENT_SCORE has a box of the same
  class in the candidate's output (decoded down to MATCH_SCORE, so a score of 0.41 vs 0.39 is no flip)
  with IoU >= MIN_BOX_IOU, and the other way round;
- other formats (lanes): relative RMS error ||a - b|| / ||a|| of every raw output <= MAX_RELATIVE_RMS.

The raw errors are recorded either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from framequeue.models.predictions import Detections, Faces
from framequeue.models.version import ModelVersion

__all__ = ["AccuracyReport", "check_pattern", "compare"]

#: largest relative RMS error ||openvino - onnxruntime|| / ||onnxruntime|| of any raw output
MAX_RELATIVE_RMS: Final = 0.05
#: boxes at least this confident must be found by both runtimes
CONFIDENT_SCORE: Final = 0.4
#: the other runtime's boxes are decoded down to this score when looking for a match (no flip at 0.4)
MATCH_SCORE: Final = 0.2
#: a confident box and its match overlap at least this much
MIN_BOX_IOU: Final = 0.9
#: NMS used to decode both runtimes' outputs
_NMS_IOU: Final = 0.45


@dataclass(frozen=True)
class AccuracyReport:
    """How far one runtime's outputs are from ONNX Runtime fp32's on the check frame."""

    #: largest |difference| over every raw output element
    max_abs_error: float
    #: largest relative RMS error of a raw output
    relative_rms: float
    #: confident boxes compared (both directions), None for formats that do not decode to detections
    boxes_matched: int | None
    #: smallest IoU of a confident box with its match (0.0: one had none), None without boxes
    min_box_iou: float | None

    @property
    def passed(self) -> bool:
        if self.min_box_iou is None:
            return self.relative_rms <= MAX_RELATIVE_RMS
        return self.min_box_iou >= MIN_BOX_IOU

    def describe(self) -> str:
        boxes = ""
        if self.min_box_iou is not None:
            boxes = f", min IoU of {self.boxes_matched} confident boxes {self.min_box_iou:.3f}"
        return f"max abs error {self.max_abs_error:.4g}, relative RMS {self.relative_rms:.4f}{boxes}"

    def to_yaml(self) -> dict[str, Any]:
        return {
            "max_abs_error": round(self.max_abs_error, 6),
            "relative_rms": round(self.relative_rms, 6),
            "boxes_matched": self.boxes_matched,
            "min_box_iou": None if self.min_box_iou is None else round(self.min_box_iou, 4),
            "limits": (
                {"relative_rms": MAX_RELATIVE_RMS}
                if self.min_box_iou is None
                else {"min_box_iou": MIN_BOX_IOU, "confident_score": CONFIDENT_SCORE}
            ),
        }


def check_pattern(height: int = 540, width: int = 960) -> npt.NDArray[np.uint8]:
    """A deterministic BGR scene for the check when no real frame is given: sky and road gradients,
    lane-like stripes, box-shaped blobs and a little texture noise."""
    rng = np.random.default_rng(12345)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.empty((height, width, 3), np.float32)
    image[..., 0] = 200 - 120 * ys / height
    image[..., 1] = 170 - 90 * ys / height
    image[..., 2] = 120 + 40 * np.sin(xs / 37.0)
    for _ in range(12):
        x, y = int(rng.integers(0, width - 120)), int(rng.integers(height // 3, height - 80))
        w, h = int(rng.integers(40, 160)), int(rng.integers(30, 90))
        image[y : y + h, x : x + w] = rng.uniform(0, 255, 3)
        image[y + h // 2 : y + h // 2 + 6, x : x + w] = 20
    image[(np.abs(xs - (width / 2 + (ys - height / 2) * 0.8)) < 4) & (ys > height / 2)] = 250
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _iou(box: npt.NDArray[np.float32], boxes: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    inter_w = (np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])).clip(0)
    inter_h = (np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])).clip(0)
    inter = inter_w * inter_h
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    result: npt.NDArray[np.float32] = inter / np.maximum(area + areas - inter, 1e-9)
    return result


def _classes(result: Detections | Faces) -> npt.NDArray[np.int64]:
    return result.class_id if isinstance(result, Detections) else np.zeros(len(result), np.int64)


def _match(confident: Detections | Faces, candidates: Detections | Faces) -> list[float]:
    """Per confident box, its best IoU with a candidate of the same class (0.0 when none)."""
    ious = []
    candidate_classes = _classes(candidates)
    for box, class_id in zip(confident.xyxy, _classes(confident), strict=True):
        same = candidates.xyxy[candidate_classes == class_id]
        ious.append(float(_iou(box, same).max()) if len(same) else 0.0)
    return ious


def compare(version: ModelVersion, image: npt.NDArray[np.uint8], reference: Any, candidate: Any) -> AccuracyReport:
    """Run BGR `image` through `version`'s format on two InferenceBackends and compare the outputs."""
    from framequeue.models.formats import get_format, get_result_format, is_result_format

    result_format = is_result_format(version.format)
    factory = get_result_format(version.format) if result_format else get_format(version.format)
    fmt = factory(version.input_size_hw, len(version.classes))
    batch = np.zeros((1, 3, *version.input_size_hw), np.float32)
    scale = fmt.preprocess(image, batch[0])
    expected, got = reference.infer(batch), candidate.infer(batch)
    max_abs, rel_rms = 0.0, 0.0
    for a, b in zip(expected, got, strict=True):
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        max_abs = max(max_abs, float(np.abs(a64 - b64).max(initial=0.0)))
        rel_rms = max(rel_rms, float(np.linalg.norm(a64 - b64) / max(float(np.linalg.norm(a64)), 1e-12)))

    def decode(outputs: list[npt.NDArray[np.float32]], threshold: float) -> Any:
        rows = [o[0] for o in outputs]
        if result_format:
            return fmt.decode(rows, scale, image.shape[:2], threshold)  # type: ignore[call-arg, arg-type]
        return fmt.decode(rows, scale, image.shape[:2], threshold, _NMS_IOU)  # type: ignore[call-arg, arg-type]

    if result_format and not isinstance(decode(expected, CONFIDENT_SCORE), Faces):
        return AccuracyReport(max_abs, rel_rms, None, None)

    ious = _match(decode(expected, CONFIDENT_SCORE), decode(got, MATCH_SCORE))
    ious += _match(decode(got, CONFIDENT_SCORE), decode(expected, MATCH_SCORE))
    return AccuracyReport(max_abs, rel_rms, len(ious), min(ious, default=1.0))
