"""NanoDet (RangiLyu) exported with a GFL head: per stride 8/16/32 one class-score and one box tensor.

Class scores are A x C probabilities (sigmoid applied in the graph). Boxes are A x 4*(REG_MAX+1)
logits: for each side (left, top, right, bottom) a distribution over distances 0..REG_MAX in units of
the stride, whose expectation (softmax, then integral) is the distance from the anchor's cell centre.
Anchors of a stride are its grid cells in row-major order. Input: BGR, `(x - MEAN) / STD`, top-left
letterbox padded with black (0 before normalisation, as the reference pre-processing pads).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from framequeue.errors import InvalidParams
from framequeue.media.letterbox import letterbox, to_image_xyxy
from framequeue.models.formats import Shape
from framequeue.models.formats.yolox import MAX_DETECTIONS, PRE_NMS_TOP_K, nms
from framequeue.models.predictions import Detections

#: feature-map strides of the three heads
STRIDES: Final = (8, 16, 32)
#: largest distance bin, in strides: each side's distribution has REG_MAX + 1 bins
REG_MAX: Final = 7
#: per-channel (B, G, R) mean and std of the training normalisation, 0-255 scale
MEAN_BGR: Final = np.asarray([103.53, 116.28, 123.675], np.float32).reshape(3, 1, 1)
STD_BGR: Final = np.asarray([57.375, 57.12, 58.395], np.float32).reshape(3, 1, 1)
_BINS: Final = np.arange(REG_MAX + 1, dtype=np.float32)


def cell_centres(input_size_hw: tuple[int, int], stride: int) -> npt.NDArray[np.float32]:
    """A x 2 (x, y) network-pixel centres of one stride's cells, row-major."""
    rows, cols = -(-input_size_hw[0] // stride), -(-input_size_hw[1] // stride)
    ys, xs = np.meshgrid(np.arange(rows, dtype=np.float32), np.arange(cols, dtype=np.float32), indexing="ij")
    return ((np.stack((xs, ys), axis=-1).reshape(-1, 2) + 0.5) * stride).astype(np.float32)


def distribution_to_distance(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """N x 4*(REG_MAX+1) logits -> N x 4 expected distances in strides (softmax integral)."""
    bins = logits.reshape(len(logits), 4, REG_MAX + 1)
    e = np.exp(bins - bins.max(axis=2, keepdims=True))
    distance: npt.NDArray[np.float32] = ((e @ _BINS) / e.sum(axis=2)).astype(np.float32)
    return distance


class NanodetFormat:
    """Pre- and post-processing for one NanoDet model of a given input size and class count."""

    def __init__(self, input_size_hw: tuple[int, int], num_classes: int) -> None:
        self.input_size_hw = input_size_hw
        self.num_classes = num_classes
        self._centres = [cell_centres(input_size_hw, s) for s in STRIDES]

    def _expected(self) -> str:
        shapes = [f"[N, {len(c)}, {self.num_classes}]" for c in self._centres]
        shapes += [f"[N, {len(c)}, {4 * (REG_MAX + 1)}]" for c in self._centres]
        return f"six outputs {', '.join(shapes)} (any order)"

    def check_outputs(self, output_shapes: Sequence[Shape]) -> None:
        if len(output_shapes) != 6 or any(len(s) != 3 for s in output_shapes):
            raise InvalidParams(f"format: a nanodet model has {self._expected()}, this one has {list(output_shapes)}")
        anchors = sorted((len(c) for c in self._centres), reverse=True)
        found = sorted((s[1] for s in output_shapes if isinstance(s[1], int)), reverse=True)
        if found and found != sorted(anchors * 2, reverse=True):
            raise InvalidParams(
                f"format: a nanodet model has {self._expected()} for input {self.input_size_hw}, "
                f"this one has {list(output_shapes)} (wrong input size, or not NanoDet?)"
            )
        columns = {s[2] for s in output_shapes if isinstance(s[2], int)}
        if columns and columns - {self.num_classes, 4 * (REG_MAX + 1)}:
            predicted = sorted(columns - {4 * (REG_MAX + 1)})
            raise InvalidParams(
                f"classes: the model predicts {predicted[0]} classes but the classes file lists {self.num_classes}"
            )

    def preprocess(self, image: npt.NDArray[np.uint8], out: npt.NDArray[np.float32]) -> float:
        scale = letterbox(image, self.input_size_hw, out=out, pad_value=0.0)[1]
        out -= MEAN_BGR
        out /= STD_BGR
        return scale

    def _split(
        self, outputs: Sequence[npt.NDArray[np.float32]]
    ) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]:
        """(scores, box logits) per stride, matched by shape: exporters order the six tensors differently."""
        pairs = []
        reg_cols = 4 * (REG_MAX + 1)
        for centres in self._centres:
            same = [o for o in outputs if o.shape[0] == len(centres)]
            cls = [o for o in same if o.shape[1] == self.num_classes]
            reg = [o for o in same if o.shape[1] == reg_cols and o is not (cls[0] if cls else None)]
            if not cls or not reg:
                raise ValueError(
                    f"nanodet outputs of one frame have shapes {[o.shape for o in outputs]}; "
                    f"expected {self._expected()}"
                )
            pairs.append((cls[0], reg[0]))
        return pairs

    def decode(
        self,
        outputs: Sequence[npt.NDArray[np.float32]],
        scale: float,
        image_hw: tuple[int, int],
        score_threshold: float,
        nms_iou: float,
        keep_class_ids: npt.NDArray[np.int64] | None = None,
    ) -> Detections:
        boxes, scores, classes = [], [], []
        for stride, centres, (cls_all, reg) in zip(STRIDES, self._centres, self._split(outputs), strict=True):
            cls = cls_all if keep_class_ids is None else cls_all[:, keep_class_ids]
            best = cls.argmax(axis=1)
            score = cls[np.arange(len(cls)), best]
            cand = np.flatnonzero(score >= score_threshold)
            if cand.size == 0:
                continue
            dist = distribution_to_distance(reg[cand]) * np.float32(stride)
            c = centres[cand]
            boxes.append(np.concatenate((c - dist[:, :2], c + dist[:, 2:]), axis=1))
            scores.append(score[cand])
            classes.append(best[cand])
        if not boxes:
            return Detections.empty()
        xyxy = np.concatenate(boxes).astype(np.float32)
        score = np.concatenate(scores).astype(np.float32)
        best = np.concatenate(classes)
        if len(score) > PRE_NMS_TOP_K:
            top = np.argpartition(-score, PRE_NMS_TOP_K)[:PRE_NMS_TOP_K]
            xyxy, score, best = xyxy[top], score[top], best[top]
        class_id = best.astype(np.int64) if keep_class_ids is None else keep_class_ids[best]
        kept = nms(xyxy, score, class_id, nms_iou)[:MAX_DETECTIONS]
        return Detections(xyxy=to_image_xyxy(xyxy[kept], scale, image_hw), class_id=class_id[kept], score=score[kept])
