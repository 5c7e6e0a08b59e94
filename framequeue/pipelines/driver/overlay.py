"""The driver overlay on one frame: each face's box, the driver's 3-D head box (a frustum from the face plane
toward the camera) and pose axes, yaw/pitch/roll, the off-road timer, a bar of off-road seconds in the rule's
window, and the banner of an active event. Sizes scale with the frame height; `draw_driver(scene, view)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from framequeue.media.draw import draw_banner, draw_segments

#: frame height at which lines are 2 px and text is 0.55 of the font's base size
REFERENCE_HEIGHT_PX: Final = 720
#: BGR colours
ON_ROAD: Final = (60, 190, 40)
OFF_ROAD: Final = (40, 40, 225)
OTHER_FACE: Final = (170, 170, 170)
HEAD_BOX: Final = (230, 200, 40)
AXES: Final = ((40, 40, 230), (40, 200, 40), (230, 120, 30))
BAR_BACK: Final = (50, 50, 50)
BAR_FILL: Final = (0, 165, 255)


@dataclass(frozen=True)
class FaceView:
    track_id: int
    box_xyxy: tuple[float, float, float, float]
    is_driver: bool
    #: smoothed (yaw, pitch, roll) in degrees, None without a pose
    angles_deg: tuple[float, float, float] | None = None
    #: 8x2 pixels of the head box's corners (rear square, then front square), None without a pose
    head_box_px: npt.NDArray[np.float64] | None = None
    #: 4x2 pixels: the pose's origin and the ends of its x, y, z axes
    axes_px: npt.NDArray[np.float64] | None = None
    off_road: bool | None = None


@dataclass(frozen=True)
class DriverView:
    t_s: float
    faces: Sequence[FaceView] = ()
    #: the counted glance in progress, seconds
    glance_s: float = 0.0
    #: counted off-road seconds in the trailing window, and the rule's window and total
    window_off_s: float = 0.0
    window_s: float = 30.0
    window_limit_s: float = 10.0
    banners: Sequence[str] = field(default_factory=tuple)


def _pt(xy: npt.NDArray[np.float64]) -> tuple[int, int]:
    return (round(float(xy[0])), round(float(xy[1])))


def draw_driver(scene: npt.NDArray[np.uint8], view: DriverView) -> npt.NDArray[np.uint8]:
    """Draw `view` on HxWx3 BGR `scene` in place and return it."""
    scale = scene.shape[0] / REFERENCE_HEIGHT_PX
    thin = max(1, round(2 * scale))
    font = max(0.4, 0.55 * scale)
    for face in view.faces:
        colour = OTHER_FACE if not face.is_driver else OFF_ROAD if face.off_road else ON_ROAD
        x1, y1, x2, y2 = (round(v) for v in face.box_xyxy)
        cv2.rectangle(scene, (x1, y1), (x2, y2), colour, (2 if face.is_driver else 1) * thin, cv2.LINE_AA)
        if face.head_box_px is not None and np.isfinite(face.head_box_px).all():
            _head_box(scene, face.head_box_px, thin)
        if face.axes_px is not None and np.isfinite(face.axes_px).all():
            origin = _pt(face.axes_px[0])
            for end, axis_colour in zip(face.axes_px[1:], AXES, strict=True):
                cv2.arrowedLine(scene, origin, _pt(end), axis_colour, thin, cv2.LINE_AA, tipLength=0.15)
        label = [f"driver #{face.track_id}" if face.is_driver else f"#{face.track_id}"]
        if face.angles_deg is not None:
            yaw, pitch, roll = face.angles_deg
            label += [f"yaw {yaw:+.0f}", f"pitch {pitch:+.0f}", f"roll {roll:+.0f}"]
        draw_segments(scene, label, (x1, y1), colour, 0.85 * font)
        if face.is_driver and view.glance_s > 0:
            draw_segments(
                scene, [f"off road {view.glance_s:.1f} s"], (x1, y2 + round(4 * scale)), OFF_ROAD, font, below=True
            )
    _window_bar(scene, view, scale, font)
    top = round(8 * scale)
    for text in view.banners:
        top = draw_banner(scene, text, top, 1.3 * font) + round(6 * scale)
    return scene


def _head_box(scene: npt.NDArray[np.uint8], corners: npt.NDArray[np.float64], thickness: int) -> None:
    rear, front = corners[:4], corners[4:]
    for square in (rear, front):
        cv2.polylines(scene, [np.rint(square).astype(np.int32)], True, HEAD_BOX, thickness, cv2.LINE_AA)
    for a, b in zip(rear, front, strict=True):
        cv2.line(scene, _pt(a), _pt(b), HEAD_BOX, thickness, cv2.LINE_AA)


def _window_bar(scene: npt.NDArray[np.uint8], view: DriverView, scale: float, font: float) -> None:
    """Bottom left: counted off-road seconds in the window as a bar, with the rule's limit marked."""
    height = scene.shape[0]
    full_s = 1.5 * view.window_limit_s
    w, h = round(260 * scale), max(6, round(14 * scale))
    x0, y0 = round(10 * scale), height - round(12 * scale) - h
    cv2.rectangle(scene, (x0, y0), (x0 + w, y0 + h), BAR_BACK, cv2.FILLED)
    filled = round(w * min(1.0, view.window_off_s / full_s))
    colour = OFF_ROAD if view.window_off_s >= view.window_limit_s else BAR_FILL
    if filled:
        cv2.rectangle(scene, (x0, y0), (x0 + filled, y0 + h), colour, cv2.FILLED)
    tick = x0 + round(w * view.window_limit_s / full_s)
    cv2.line(scene, (tick, y0 - 2), (tick, y0 + h + 2), (255, 255, 255), max(1, round(scale)))
    text = [f"off road {view.window_off_s:.1f} s in {view.window_s:.0f} s", f"limit {view.window_limit_s:g} s"]
    draw_segments(scene, text, (x0, y0 - round(4 * scale)), (40, 40, 40), 0.8 * font)
