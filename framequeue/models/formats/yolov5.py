"""YOLOv5 ONNX exports: one output N x A x (5 + C), already decoded.

Rows are the 3 anchors of every stride-8/16/32 cell: (cx, cy, w, h) in network pixels, objectness,
then C class probabilities; score = obj * cls. Input: RGB 0-1, letterboxed with grey 114. The weights
are AGPL-3.0: users bring them, the project never ships them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from framequeue.models.formats import Shape, check_single_output
from framequeue.models.formats.ultralytics import decode_cxcywh, grid_cells, letterbox_rgb01
from framequeue.models.predictions import Detections

#: anchor boxes per grid cell
ANCHORS_PER_CELL: Final = 3


class Yolov5Format:
    """Pre- and post-processing for one YOLOv5 detector export."""

    def __init__(self, input_size_hw: tuple[int, int], num_classes: int) -> None:
        self.input_size_hw = input_size_hw
        self.num_classes = num_classes
        self.num_anchors = ANCHORS_PER_CELL * grid_cells(input_size_hw)

    def check_outputs(self, output_shapes: Sequence[Shape]) -> None:
        check_single_output("a yolov5", output_shapes, self.input_size_hw, anchors=self.num_anchors,
                            box_fields=5, num_classes=self.num_classes,
                            hint=", or not YOLOv5")

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
        if raw.shape != (self.num_anchors, 5 + self.num_classes):
            raise ValueError(
                f"yolov5 output of one frame has shape {raw.shape}, expected {(self.num_anchors, 5 + self.num_classes)}"
            )
        # class probabilities are <= 1, so obj * cls >= t needs obj >= t: filter before any other work
        rows = raw[raw[:, 4] >= score_threshold]
        scores = rows[:, 5:] * rows[:, 4:5]
        return decode_cxcywh(rows[:, :4], scores, scale, image_hw, score_threshold, nms_iou, keep_class_ids)
