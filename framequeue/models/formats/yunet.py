"""YuNet (libfacedetection) exported without post-processing: per stride 8/16/32, cls, obj, bbox, kps.

Decoded here as cv2.FaceDetectorYN does: for cell (col, row) of a stride, score = sqrt(cls * obj),
centre = (col + dx, row + dy) * stride, size = exp(dw, dh) * stride, keypoint k = (col + kx, row + ky)
* stride; then NMS. Input: BGR 0-255, no normalisation; top-left letterbox padded with black.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from framequeue.errors import InvalidParams
from framequeue.media.letterbox import letterbox, to_image_xyxy
from framequeue.models.formats import Shape
from framequeue.models.formats.yolox import nms
from framequeue.models.predictions import Faces

STRIDES: Final = (8, 16, 32)
#: keypoints per face: right eye, left eye, nose tip, right and left mouth corners
NUM_LANDMARKS: Final = 5
#: IoU above which the lower-scored of two faces is dropped (cv2.FaceDetectorYN's default)
NMS_IOU: Final = 0.3
#: faces kept after NMS
MAX_FACES: Final = 100
#: raw log-size regressions are clipped here before exp()
_MAX_LOG_WH: Final = 10.0
#: output columns per kind: cls, obj, bbox, kps
_COLUMNS: Final = (1, 1, 4, 2 * NUM_LANDMARKS)


class YunetFormat:
    """Pre- and post-processing for a YuNet model of a fixed input size (sides divisible by 32)."""

    def __init__(self, input_size_hw: tuple[int, int], num_classes: int = 1) -> None:
        if input_size_hw[0] % STRIDES[-1] or input_size_hw[1] % STRIDES[-1]:
            raise InvalidParams(f"input_size_hw: YuNet needs sides divisible by 32, got {input_size_hw}")
        self.input_size_hw = input_size_hw
        self._cells: list[tuple[npt.NDArray[np.float32], int]] = []
        for stride in STRIDES:
            rows, cols = input_size_hw[0] // stride, input_size_hw[1] // stride
            ys, xs = np.meshgrid(np.arange(rows, dtype=np.float32), np.arange(cols, dtype=np.float32), indexing="ij")
            self._cells.append((np.stack((xs, ys), axis=-1).reshape(-1, 2), stride))

    def _expected(self) -> list[tuple[int, int]]:
        """(anchors, columns) of the 12 outputs in graph order: cls, obj, bbox, kps, each for 8/16/32."""
        return [(len(cells), cols) for cols in _COLUMNS for cells, _ in self._cells]

    def check_outputs(self, output_shapes: Sequence[Shape]) -> None:
        expected = self._expected()
        found = [tuple(s[1:]) for s in output_shapes]
        if len(found) != len(expected) or any(
            len(f) != 2 or any(isinstance(d, int) and d != e for d, e in zip(f, want, strict=True))
            for f, want in zip(found, expected, strict=True)
        ):
            raise InvalidParams(
                f"format: a yunet model for input {self.input_size_hw} has 12 outputs cls/obj/bbox/kps per "
                f"stride 8/16/32 of [N, anchors, columns] {expected}; this one has {list(output_shapes)}"
            )

    def preprocess(self, image: npt.NDArray[np.uint8], out: npt.NDArray[np.float32]) -> tuple[float, float]:
        scale = letterbox(image, self.input_size_hw, out=out, pad_value=0.0)[1]
        return scale, scale

    def decode(
        self,
        outputs: Sequence[npt.NDArray[np.float32]],
        scale_xy: tuple[float, float],
        image_hw: tuple[int, int],
        score_threshold: float,
    ) -> Faces:
        if len(outputs) != 12:
            raise ValueError(f"yunet takes 12 outputs of one frame, got {len(outputs)}")
        boxes, scores, points = [], [], []
        for level, (cells, stride) in enumerate(self._cells):
            cls, obj, bbox, kps = (outputs[level + 3 * k] for k in range(4))
            score = np.sqrt(np.clip(cls[:, 0], 0, 1) * np.clip(obj[:, 0], 0, 1))
            cand = np.flatnonzero(score >= score_threshold)
            if cand.size == 0:
                continue
            cell, box = cells[cand], bbox[cand]
            centre = (cell + box[:, :2]) * stride
            size = np.exp(np.minimum(box[:, 2:4], _MAX_LOG_WH)) * stride
            boxes.append(np.concatenate((centre - size / 2, centre + size / 2), axis=1))
            points.append((kps[cand].reshape(-1, NUM_LANDMARKS, 2) + cell[:, None, :]) * stride)
            scores.append(score[cand])
        if not boxes:
            return Faces.empty(NUM_LANDMARKS)
        xyxy = np.concatenate(boxes).astype(np.float32)
        score = np.concatenate(scores).astype(np.float32)
        landmarks = np.concatenate(points).astype(np.float32)
        kept = nms(xyxy, score, np.zeros(len(score), np.int64), NMS_IOU)[:MAX_FACES]
        scale = np.float32(scale_xy[0])
        return Faces(
            xyxy=to_image_xyxy(xyxy[kept], float(scale), image_hw),
            score=score[kept],
            landmarks=(landmarks[kept] / scale).astype(np.float32),
        )
