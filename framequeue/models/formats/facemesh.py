"""MediaPipe FaceMesh (`face_landmark.tflite`): 468 3-D landmarks of one face, a second stage after a
face detector (YuNet, BlazeFace).

Input: 1x192x192x3 RGB/255, a square crop of side CROP_SCALE x the face box's longer side, centred on
the box and rotated so the eye line is level. Outputs: 1404 = 468 x (x, y, z) in crop pixels (z is
relative depth at the same scale as x), and a face-presence logit. Decoding maps the points back through
the inverse of the crop's similarity transform, so they are in original image pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from framequeue.errors import InvalidParams
from framequeue.models.formats import Shape
from framequeue.models.predictions import FaceMesh

#: landmarks FaceMesh predicts
NUM_POINTS: Final = 468
#: network input side in pixels
INPUT_SIDE: Final = 192
#: crop side / the face box's longer side
CROP_SCALE: Final = 1.5


@dataclass(frozen=True)
class FaceCrop:
    """Where the network input came from: image -> crop similarity transform."""

    #: 2x3 float64 affine taking image (x, y, 1) to crop pixels
    image_to_crop: npt.NDArray[np.float64]
    #: crop pixel -> image pixel factor (the crop side / INPUT_SIDE)
    scale: float


def crop_transform(
    box_xyxy: Sequence[float], right_eye_xy: Sequence[float], left_eye_xy: Sequence[float]
) -> FaceCrop:
    """The crop of a face box, rotated so the line from the subject's right eye (image left) to the
    left eye is horizontal."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = CROP_SCALE * max(x2 - x1, y2 - y1)
    angle = math.atan2(float(left_eye_xy[1]) - float(right_eye_xy[1]), float(left_eye_xy[0]) - float(right_eye_xy[0]))
    scale = side / INPUT_SIDE
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    # rotate by -angle about the box centre, scale to the input, move the centre to the crop's middle
    half = INPUT_SIDE / 2
    matrix = np.array([[cos, sin, half - cos * cx - sin * cy], [-sin, cos, half + sin * cx - cos * cy]], np.float64)
    return FaceCrop(matrix, scale)


class FacemeshFormat:
    """Pre- and post-processing of FaceMesh for one face at a time."""

    def check_outputs(self, output_shapes: Sequence[Shape]) -> None:
        sizes = [math.prod(int(d) for d in shape[1:] if isinstance(d, int)) for shape in output_shapes]
        if len(sizes) != 2 or sizes[0] != NUM_POINTS * 3 or sizes[1] != 1:
            raise InvalidParams(
                f"format: facemesh expects outputs of {NUM_POINTS * 3} landmark values and 1 presence logit, "
                f"got shapes {[list(s) for s in output_shapes]}"
            )

    def preprocess(self, image: npt.NDArray[np.uint8], crop: FaceCrop, out: npt.NDArray[np.float32]) -> None:
        """Write the crop of HxWx3 BGR `image` into `out` (192x192x3 RGB in [0, 1])."""
        patch = cv2.warpAffine(
            image, crop.image_to_crop, (INPUT_SIDE, INPUT_SIDE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
        np.multiply(patch[..., ::-1], 1.0 / 255.0, out=out, casting="unsafe")

    def decode(self, outputs: Sequence[npt.NDArray[np.float32]], crop: FaceCrop) -> FaceMesh:
        """One face's raw outputs (batch dim removed) -> its mesh in image pixels."""
        points = np.asarray(outputs[0], np.float64).reshape(NUM_POINTS, 3)
        inverse = cv2.invertAffineTransform(crop.image_to_crop)
        xy = points[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        mesh = np.column_stack((xy, points[:, 2] * crop.scale)).astype(np.float32)
        logit = float(np.asarray(outputs[1]).reshape(-1)[0])
        return FaceMesh(mesh, 1.0 / (1.0 + math.exp(-logit)))
