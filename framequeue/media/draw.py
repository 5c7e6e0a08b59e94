"""Drawing primitives the overlays share: text segments on a filled tab, and an event banner. Sizes are in
pixels of the frame being drawn on; callers scale them with the frame height.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

_FONT: Final = cv2.FONT_HERSHEY_SIMPLEX
_WHITE: Final = (255, 255, 255)
#: BGR of an event banner
BANNER: Final = (30, 30, 200)


def draw_segments(
    scene: npt.NDArray[np.uint8],
    segments: Sequence[str],
    anchor_xy: tuple[int, int],
    colour: tuple[int, int, int],
    font_scale: float,
    below: bool = False,
) -> None:
    """White text segments separated by a middle dot, on a filled tab just above `anchor_xy` (below it with
    `below`, or when there is no room above). Hershey fonts have no "·", so the dot is drawn."""
    sizes = [cv2.getTextSize(s, _FONT, font_scale, 1)[0] for s in segments]
    text_h = max(h for _, h in sizes)
    baseline = cv2.getTextSize("g", _FONT, font_scale, 1)[1]
    gap = max(6, round(text_h * 0.9))
    tab_w = sum(w for w, _ in sizes) + gap * (len(segments) - 1) + 8
    tab_h = text_h + baseline + 6
    height, width = scene.shape[:2]
    # kept inside the frame: detector boxes may reach past its edges (a truck close ahead)
    x = min(max(0, anchor_xy[0]), max(0, width - 1 - tab_w))
    y = anchor_xy[1] if below or anchor_xy[1] < tab_h else anchor_xy[1] - tab_h
    y = min(max(0, y), max(0, height - 1 - tab_h))
    cv2.rectangle(scene, (x, y), (x + tab_w, y + tab_h), colour, cv2.FILLED)
    cursor = x + 4
    text_y = y + text_h + 3
    thickness = max(1, round(font_scale * 1.6))
    for k, (segment, (w, _)) in enumerate(zip(segments, sizes, strict=True)):
        if k:
            dot_x = cursor - gap // 2
            cv2.circle(scene, (dot_x, text_y - text_h // 2), max(1, round(text_h / 7)), _WHITE, cv2.FILLED, cv2.LINE_AA)
        cv2.putText(scene, segment, (cursor, text_y), _FONT, font_scale, _WHITE, thickness, cv2.LINE_AA)
        cursor += w + gap


def draw_banner(
    scene: npt.NDArray[np.uint8], text: str, top: int, font_scale: float, colour: tuple[int, int, int] = BANNER
) -> int:
    """A bar (red by default) across the top centre with `text`; returns its bottom row."""
    thickness = max(1, round(font_scale * 1.8))
    (w, h), baseline = cv2.getTextSize(text, _FONT, font_scale, thickness)
    width = scene.shape[1]
    pad = max(4, h // 2)
    x0 = max(0, (width - w) // 2 - pad)
    x1 = min(width, (width + w) // 2 + pad)
    bottom = top + h + baseline + 2 * pad
    cv2.rectangle(scene, (x0, top), (x1, bottom), colour, cv2.FILLED)
    cv2.putText(scene, text, ((width - w) // 2, top + pad + h), _FONT, font_scale, _WHITE, thickness, cv2.LINE_AA)
    return bottom
