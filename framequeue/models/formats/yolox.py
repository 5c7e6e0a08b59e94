"""YOLOX (Megvii) exported without decode: one output N x A x (5 + C).

Rows are anchors of the stride-8, 16 and 32 grids in row-major order; columns are (x, y, w, h) raw
regressions, then objectness and class probabilities (sigmoids already applied in the graph).
Input: BGR 0-255, no normalisation, top-left letterbox padded with 114.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from framequeue.errors import InvalidParams
from framequeue.media.letterbox import letterbox, to_image_xyxy
from framequeue.models.formats import Shape, check_single_output
from framequeue.models.predictions import Detections

#: feature-map strides of the three YOLOX heads, in output order
STRIDES: Final = (8, 16, 32)
#: candidates kept (by score) before NMS, so a noisy frame cannot make NMS quadratic in thousands of boxes
PRE_NMS_TOP_K: Final = 1000
#: detections kept after NMS
MAX_DETECTIONS: Final = 300
#: raw log-size regressions are clipped here before exp(): exp(10) * 32 px already exceeds any frame
_MAX_LOG_WH: Final = 10.0


def make_grid(input_size_hw: tuple[int, int]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(A x 2 cell (x, y) offsets, A x 1 strides) for all anchors of an input of `input_size_hw`."""
    grids, strides = [], []
    for stride in STRIDES:
        rows, cols = input_size_hw[0] // stride, input_size_hw[1] // stride
        ys, xs = np.meshgrid(
            np.arange(rows, dtype=np.float32), np.arange(cols, dtype=np.float32), indexing="ij"
        )
        grids.append(np.stack((xs, ys), axis=-1).reshape(-1, 2))
        strides.append(np.full((rows * cols, 1), stride, np.float32))
    return np.concatenate(grids), np.concatenate(strides)


def nms(
    xyxy: npt.NDArray[np.float32],
    score: npt.NDArray[np.float32],
    class_id: npt.NDArray[np.int64],
    iou_threshold: float,
) -> npt.NDArray[np.int64]:
    """Indexes of the boxes greedy class-aware NMS keeps, best score first.

    Boxes of different classes never suppress each other: each class is shifted to its own region of
    the plane, so a single pass handles all classes.
    """
    if len(xyxy) == 0:
        return np.zeros(0, np.int64)
    offset = (class_id.astype(np.float32) * (float(xyxy.max()) + 1.0))[:, None]
    boxes = xyxy + offset
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    order = np.argsort(-score, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        inter_w = (np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])).clip(0)
        inter_h = (np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])).clip(0)
        inter = inter_w * inter_h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, np.int64)


class YoloxFormat:
    """Pre- and post-processing for one YOLOX model of a given input size and class count."""

    def __init__(self, input_size_hw: tuple[int, int], num_classes: int) -> None:
        if input_size_hw[0] % STRIDES[-1] or input_size_hw[1] % STRIDES[-1]:
            raise InvalidParams(
                f"input_size_hw: YOLOX needs sides divisible by {STRIDES[-1]}, got {input_size_hw}"
            )
        self.input_size_hw = input_size_hw
        self.num_classes = num_classes
        self._grid, self._strides = make_grid(input_size_hw)

    @property
    def num_anchors(self) -> int:
        return len(self._grid)

    def check_outputs(self, output_shapes: Sequence[Shape]) -> None:
        check_single_output("a yolox", output_shapes, self.input_size_hw, anchors=self.num_anchors,
                            box_fields=5, num_classes=self.num_classes,
                            hint=", or not YOLOX")

    def preprocess(self, image: npt.NDArray[np.uint8], out: npt.NDArray[np.float32]) -> float:
        return letterbox(image, self.input_size_hw, out=out)[1]

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
                f"yolox output of one frame has shape {raw.shape}, expected "
                f"{(self.num_anchors, 5 + self.num_classes)}"
            )
        # class probabilities are <= 1, so obj * cls >= t needs obj >= t: filter before any other work
        cand = np.flatnonzero(raw[:, 4] >= score_threshold)
        if cand.size == 0:
            return Detections.empty()
        rows = raw[cand]
        cls = rows[:, 5:] if keep_class_ids is None else rows[:, 5 + keep_class_ids]
        best = cls.argmax(axis=1)
        score = rows[:, 4] * cls[np.arange(len(cls)), best]
        passed = np.flatnonzero(score >= score_threshold)
        if passed.size == 0:
            return Detections.empty()
        if passed.size > PRE_NMS_TOP_K:
            passed = passed[np.argpartition(-score[passed], PRE_NMS_TOP_K)[:PRE_NMS_TOP_K]]
        rows, score, best, cand = rows[passed], score[passed], best[passed], cand[passed]
        class_id = best.astype(np.int64) if keep_class_ids is None else keep_class_ids[best]
        stride = self._strides[cand]
        xy = (rows[:, :2] + self._grid[cand]) * stride
        wh = np.exp(np.minimum(rows[:, 2:4], _MAX_LOG_WH)) * stride
        xyxy = np.concatenate((xy - wh / 2, xy + wh / 2), axis=1).astype(np.float32)
        kept = nms(xyxy, score, class_id, nms_iou)[:MAX_DETECTIONS]
        return Detections(
            xyxy=to_image_xyxy(xyxy[kept], scale, image_hw),
            class_id=class_id[kept],
            score=score[kept].astype(np.float32),
        )
