"""Ultralytics YOLOv8/v11 ONNX exports: one output N x (4 + C) x A, already decoded.

Per anchor column: (cx, cy, w, h) in network pixels, then C class probabilities; no objectness.
Input: RGB 0-1, letterboxed with grey 114 (top-left here; the network is indifferent to where the pad
lies). The weights are AGPL-3.0: users bring them, the project never ships them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from framequeue.media.letterbox import letterbox, to_image_xyxy
from framequeue.models.formats import Shape, check_single_output
from framequeue.models.formats.yolox import MAX_DETECTIONS, PRE_NMS_TOP_K, nms
from framequeue.models.predictions import Detections

#: feature-map strides of the three heads
STRIDES: Final = (8, 16, 32)


def grid_cells(input_size_hw: tuple[int, int]) -> int:
    """Number of cells over the stride-8/16/32 grids of an input (one prediction each per anchor)."""
    return sum(-(-input_size_hw[0] // s) * -(-input_size_hw[1] // s) for s in STRIDES)


def letterbox_rgb01(image: npt.NDArray[np.uint8], size_hw: tuple[int, int], out: npt.NDArray[np.float32]) -> float:
    """Letterbox HxWx3 BGR `image` into `out` as RGB in [0, 1] (pad 114/255); return the scale."""
    scale = letterbox(image, size_hw, out=out)[1]
    out[[0, 2]] = out[[2, 0]]
    out *= np.float32(1 / 255)
    return scale


def decode_cxcywh(
    cxcywh: npt.NDArray[np.float32],
    class_scores: npt.NDArray[np.float32],
    scale: float,
    image_hw: tuple[int, int],
    score_threshold: float,
    nms_iou: float,
    keep_class_ids: npt.NDArray[np.int64] | None,
) -> Detections:
    """A x 4 centre boxes (network px) and A x C final scores -> detections in image pixels, after NMS."""
    cls = class_scores if keep_class_ids is None else class_scores[:, keep_class_ids]
    best = cls.argmax(axis=1)
    score = cls[np.arange(len(cls)), best]
    passed = np.flatnonzero(score >= score_threshold)
    if passed.size == 0:
        return Detections.empty()
    if passed.size > PRE_NMS_TOP_K:
        passed = passed[np.argpartition(-score[passed], PRE_NMS_TOP_K)[:PRE_NMS_TOP_K]]
    box, score, best = cxcywh[passed], score[passed].astype(np.float32), best[passed]
    class_id = best.astype(np.int64) if keep_class_ids is None else keep_class_ids[best]
    xyxy = np.concatenate((box[:, :2] - box[:, 2:4] / 2, box[:, :2] + box[:, 2:4] / 2), axis=1).astype(np.float32)
    kept = nms(xyxy, score, class_id, nms_iou)[:MAX_DETECTIONS]
    return Detections(xyxy=to_image_xyxy(xyxy[kept], scale, image_hw), class_id=class_id[kept], score=score[kept])


class UltralyticsFormat:
    """Pre- and post-processing for one Ultralytics (v8/v11) detector export."""

    def __init__(self, input_size_hw: tuple[int, int], num_classes: int) -> None:
        self.input_size_hw = input_size_hw
        self.num_classes = num_classes
        self.num_anchors = grid_cells(input_size_hw)

    def check_outputs(self, output_shapes: Sequence[Shape]) -> None:
        check_single_output("an ultralytics", output_shapes, self.input_size_hw, anchors=self.num_anchors,
                            box_fields=4, num_classes=self.num_classes, anchors_last=True,
                            hint=", or not an Ultralytics export")

    def preprocess(self, image: npt.NDArray[np.uint8], out: npt.NDArray[np.float32]) -> float:
        return letterbox_rgb01(image, self.input_size_hw, out)

    def decode(
        self,
        outputs: Sequence[npt.NDArray[np.float32]],
        scale: float,
        image_hw: tuple[int, int],
        score_threshold: float,
        nms_iou: float,
        keep_class_ids: npt.NDArray[np.int64] | None = None,
    ) -> Detections:
        raw = outputs[0]
        if raw.shape != (4 + self.num_classes, self.num_anchors):
            raise ValueError(
                f"ultralytics output of one frame has shape {raw.shape}, expected "
                f"{(4 + self.num_classes, self.num_anchors)}"
            )
        rows = raw.T
        return decode_cxcywh(rows[:, :4], rows[:, 4:], scale, image_hw, score_threshold, nms_iou, keep_class_ids)
