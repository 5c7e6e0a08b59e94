"""MediaPipe BlazeFace short range (the ONNX conversion): 896 anchors, regressors and classificators.

Anchors are the cells of a 16x16 grid (2 per cell) then of an 8x8 grid (6 per cell), row-major, centred
in their cell, in units of the 128-px input. Regressor row: (dx, dy, w, h) of the box centre and size,
then 6 keypoints (dx, dy), all in input pixels relative to the anchor centre; score = sigmoid(logit).
Faces are merged by plain NMS. Input: RGB scaled to [-1, 1], top-left letterbox padded with black.
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

#: (grid side, anchors per cell) of the two anchor layers
LAYERS: Final = ((16, 2), (8, 6))
#: keypoints per face: right eye, left eye, nose tip, mouth centre, right and left ear tragion
NUM_LANDMARKS: Final = 6
#: IoU above which the lower-scored of two faces is dropped (MediaPipe's min_suppression_threshold)
NMS_IOU: Final = 0.3
MAX_FACES: Final = 100
#: logits are clipped before the sigmoid (MediaPipe uses 100; exp(100) overflows float32, and the
#: sigmoid is saturated long before 80)
_LOGIT_CLIP: Final = 80.0


def make_anchors() -> npt.NDArray[np.float32]:
    """896 x 2 anchor centres (x, y) in [0, 1]."""
    anchors = []
    for side, per_cell in LAYERS:
        ys, xs = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        centres = (np.stack((xs, ys), axis=-1).reshape(-1, 2) + 0.5) / side
        anchors.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(anchors).astype(np.float32)


class BlazefaceFormat:
    """Pre- and post-processing for BlazeFace short range (128x128 input)."""

    def __init__(self, input_size_hw: tuple[int, int] = (128, 128), num_classes: int = 1) -> None:
        if input_size_hw != (128, 128):
            raise InvalidParams(f"input_size_hw: BlazeFace short range takes 128x128, got {input_size_hw}")
        self.input_size_hw = input_size_hw
        self._anchors = make_anchors() * np.float32(128)

    def check_outputs(self, output_shapes: Sequence[Shape]) -> None:
        expected = [(896, 4 + 2 * NUM_LANDMARKS), (896, 1)]
        found = sorted((tuple(s[1:]) for s in output_shapes), key=lambda s: -int(s[-1] or 0))
        if found != expected:
            raise InvalidParams(
                f"format: a blazeface model has outputs regressors [N, 896, 16] and classificators "
                f"[N, 896, 1]; this one has {list(output_shapes)}"
            )

    def preprocess(self, image: npt.NDArray[np.uint8], out: npt.NDArray[np.float32]) -> tuple[float, float]:
        scale = letterbox(image, self.input_size_hw, out=out, pad_value=0.0)[1]
        out[[0, 2]] = out[[2, 0]]
        out *= np.float32(1 / 127.5)
        out -= np.float32(1)
        return scale, scale

    def decode(
        self,
        outputs: Sequence[npt.NDArray[np.float32]],
        scale_xy: tuple[float, float],
        image_hw: tuple[int, int],
        score_threshold: float,
    ) -> Faces:
        regressors, logits = sorted(outputs, key=lambda o: -o.shape[-1])
        all_scores = 1 / (1 + np.exp(-np.clip(logits[:, 0], -_LOGIT_CLIP, _LOGIT_CLIP)))
        cand = np.flatnonzero(all_scores >= score_threshold)
        if cand.size == 0:
            return Faces.empty(NUM_LANDMARKS)
        reg, anchor = regressors[cand], self._anchors[cand]
        centre, half = anchor + reg[:, :2], reg[:, 2:4] / 2
        xyxy = np.concatenate((centre - half, centre + half), axis=1).astype(np.float32)
        landmarks = reg[:, 4:].reshape(-1, NUM_LANDMARKS, 2) + anchor[:, None, :]
        score: npt.NDArray[np.float32] = all_scores[cand].astype(np.float32)
        kept = nms(xyxy, score, np.zeros(len(score), np.int64), NMS_IOU)[:MAX_FACES]
        scale = scale_xy[0]
        return Faces(
            xyxy=to_image_xyxy(xyxy[kept], scale, image_hw),
            score=score[kept],
            landmarks=(landmarks[kept] / np.float32(scale)).astype(np.float32),
        )
