"""LSTR lane detector: 7 lane queries, each a class logit pair and a curve of 8 parameters.

`pred_logits` Q x 2 (softmax, class 1 = lane) and `pred_curves` Q x 8 = (lower, upper, k, f, m, n, b, b');
on normalised image heights y in [lower, upper] the lane is at normalised x = k/(y-f)^2 + m/(y-f) + n
+ b*y - b'. Input `input_rgb`: the whole frame stretched to the input size, RGB/255 with ImageNet mean and
std; the second input `input_mask` is all zeros (1 x H x W), fed by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from framequeue.errors import InvalidParams
from framequeue.models.formats import Shape
from framequeue.models.predictions import Lanes

#: ImageNet normalisation of RGB in [0, 1]
MEAN_RGB: Final = np.asarray([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
STD_RGB: Final = np.asarray([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)
#: points sampled along each lane between its lower and upper end
POINTS_PER_LANE: Final = 50
#: curve parameters per query
_CURVE: Final = 8


class LstrFormat:
    """Pre- and post-processing for an LSTR model (360x640 for the TuSimple export)."""

    def __init__(self, input_size_hw: tuple[int, int] = (360, 640), num_classes: int = 1) -> None:
        self.input_size_hw = input_size_hw

    def check_outputs(self, output_shapes: Sequence[Shape]) -> None:
        if len(output_shapes) < 2 or len(output_shapes[0]) != 3 or len(output_shapes[1]) != 3:
            raise InvalidParams(
                f"format: an lstr model's first outputs are pred_logits [N, Q, 2] and pred_curves [N, Q, 8]; "
                f"this one has {list(output_shapes)}"
            )
        (_, q1, classes), (_, q2, params) = output_shapes[0], output_shapes[1]
        if classes != 2 or params != _CURVE or (isinstance(q1, int) and isinstance(q2, int) and q1 != q2):
            raise InvalidParams(
                f"format: an lstr model's first outputs are pred_logits [N, Q, 2] and pred_curves [N, Q, 8]; "
                f"this one has {list(output_shapes)}"
            )

    def preprocess(self, image: npt.NDArray[np.uint8], out: npt.NDArray[np.float32]) -> tuple[float, float]:
        net_h, net_w = self.input_size_hw
        resized = cv2.resize(image, (net_w, net_h), interpolation=cv2.INTER_LINEAR)
        np.copyto(out, resized[..., ::-1].transpose(2, 0, 1), casting="unsafe")
        out *= np.float32(1 / 255)
        out -= MEAN_RGB
        out /= STD_RGB
        return net_w / image.shape[1], net_h / image.shape[0]

    def decode(
        self,
        outputs: Sequence[npt.NDArray[np.float32]],
        scale_xy: tuple[float, float],
        image_hw: tuple[int, int],
        score_threshold: float,
    ) -> Lanes:
        logits, curves = outputs[0], outputs[1]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        score = (e[:, 1] / e.sum(axis=1)).astype(np.float32)
        order = [int(i) for i in np.argsort(-score, kind="stable") if score[i] >= score_threshold]
        height, width = image_hw
        polylines, scores = [], []
        for i in order:
            lower, upper, k, f, m, n, b, b2 = (float(v) for v in curves[i])
            y = np.linspace(lower, upper, POINTS_PER_LANE, dtype=np.float64)
            d = y - f
            with np.errstate(divide="ignore", invalid="ignore"):
                x = k / d**2 + m / d + n + b * y - b2
            points = np.stack((x * width, y * height), axis=1)
            inside = np.isfinite(points).all(axis=1) & (points[:, 0] >= 0) & (points[:, 0] < width)
            inside &= (points[:, 1] >= 0) & (points[:, 1] < height)
            if inside.sum() >= 2:
                polylines.append(points[inside].astype(np.float32))
                scores.append(score[i])
        return Lanes(polylines=tuple(polylines), score=np.asarray(scores, np.float32))
