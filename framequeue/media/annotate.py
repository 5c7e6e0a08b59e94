"""Draw detections on a frame: a box per detection and a "class score" label on a filled tab."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

import cv2
import numpy as np
import numpy.typing as npt

#: BGR colours cycled by class id (distinct, readable under white text)
PALETTE: Final = (
    (56, 56, 255),
    (151, 157, 255),
    (31, 112, 255),
    (29, 178, 255),
    (49, 210, 207),
    (10, 249, 72),
    (23, 204, 146),
    (134, 219, 61),
    (52, 147, 26),
    (187, 212, 0),
    (168, 153, 44),
    (255, 194, 0),
    (147, 69, 52),
    (255, 115, 100),
    (236, 24, 0),
    (255, 56, 132),
    (133, 0, 82),
    (255, 56, 203),
)
_FONT: Final = cv2.FONT_HERSHEY_SIMPLEX
_WHITE: Final = (255, 255, 255)
#: image height at which lines are 2 px and text is 0.5 of the font's base size
_REFERENCE_HEIGHT_PX: Final = 720


class LabelledBoxes(Protocol):
    """What `annotate` draws: N boxes, each with a class id and a score (the models' Detections is one;
    media sits below the models and names none of their types)."""

    #: Nx4 float32, (x1, y1, x2, y2) pixels
    @property
    def xyxy(self) -> npt.NDArray[np.float32]: ...

    #: N int64 indexes into the class names
    @property
    def class_id(self) -> npt.NDArray[np.int64]: ...

    #: N float32 in [0, 1]
    @property
    def score(self) -> npt.NDArray[np.float32]: ...

    def __len__(self) -> int: ...


def annotate(
    scene: npt.NDArray[np.uint8], detections: LabelledBoxes, class_names: Sequence[str]
) -> npt.NDArray[np.uint8]:
    """Draw `detections` on HxWx3 BGR `scene` in place and return it."""
    if len(detections) == 0:
        return scene
    size = scene.shape[0] / _REFERENCE_HEIGHT_PX
    thickness = max(1, round(2 * size))
    font_scale = max(0.35, 0.5 * size)
    boxes = np.rint(detections.xyxy).astype(np.int32)
    for (x1, y1, x2, y2), class_id, score in zip(
        boxes.tolist(), detections.class_id.tolist(), detections.score.tolist(), strict=True
    ):
        colour = PALETTE[class_id % len(PALETTE)]
        cv2.rectangle(scene, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_8)
        name = class_names[class_id] if 0 <= class_id < len(class_names) else str(class_id)
        draw_label(scene, f"{name} {score:.2f}", (x1, y1), colour, font_scale)
    return scene


def draw_label(
    scene: npt.NDArray[np.uint8],
    text: str,
    anchor_xy: tuple[int, int],
    colour: tuple[int, int, int],
    font_scale: float,
) -> None:
    """White text on a filled tab just above `anchor_xy` (below it when there is no room above)."""
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, font_scale, 1)
    tab_h = text_h + baseline + 2
    x = max(0, anchor_xy[0])
    y = anchor_xy[1] - tab_h if anchor_xy[1] >= tab_h else anchor_xy[1]
    cv2.rectangle(scene, (x, y), (x + text_w + 4, y + tab_h), colour, cv2.FILLED)
    cv2.putText(scene, text, (x + 2, y + text_h + 1), _FONT, font_scale, _WHITE, 1, cv2.LINE_AA)
