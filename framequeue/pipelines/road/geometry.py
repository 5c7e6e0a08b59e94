"""Monocular geometry of a forward-looking camera: the focal length a job implies, distance from a
vehicle's width in pixels, lateral offset, and the ground-plane distance used as a cross-check.

Pinhole model, no lens distortion, principal point at the image centre. Pure functions, units in names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

#: with no camera given, focal length = image width (a horizontal field of view of 53.1 degrees, typical of
#: a dashcam after its lens is undistorted); stated in the job's `assumptions`
DEFAULT_FOCAL_PER_WIDTH: Final = 1.0


@dataclass(frozen=True)
class Camera:
    #: focal length in pixels of the analysed frames
    focal_px: float
    #: principal point (the image centre), pixels
    cx_px: float
    cy_px: float
    width_px: int
    height_px: int
    #: mounting height above the road, metres, when the job gave it
    height_m: float | None
    #: where focal_px came from: "focal_px", "hfov_deg" (given) or "default"
    source: str
    #: image row of the horizon when the job gave it, pixels
    horizon_y_px: float | None = None

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2 * math.atan(self.width_px / 2 / self.focal_px))

    def to_json(self) -> dict[str, Any]:
        return {
            "focal_px": round(self.focal_px, 2),
            "hfov_deg": round(self.hfov_deg, 2),
            "source": self.source,
            "principal_point_px": [self.cx_px, self.cy_px],
            "height_m": self.height_m,
            "horizon_y_px": self.horizon_y_px,
        }


def camera_for(camera: Mapping[str, float] | None, width_px: int, height_px: int) -> Camera:
    """The camera of a job's `camera` param (validated: one of focal_px / hfov_deg, maybe height_m)."""
    cam = camera or {}
    if "focal_px" in cam:
        focal, source = float(cam["focal_px"]), "focal_px"
    elif "hfov_deg" in cam:
        focal, source = (width_px / 2) / math.tan(math.radians(cam["hfov_deg"]) / 2), "hfov_deg"
    else:
        focal, source = DEFAULT_FOCAL_PER_WIDTH * width_px, "default"
    return Camera(
        focal, width_px / 2, height_px / 2, width_px, height_px, cam.get("height_m"), source, cam.get("horizon_y_px")
    )


def distance_from_width_m(focal_px: float, real_width_m: float, width_px: float) -> float:
    """Distance along the optical axis of an object `real_width_m` wide that spans `width_px` pixels."""
    if width_px <= 0:
        raise ValueError(f"width_px must be positive, got {width_px}")
    return focal_px * real_width_m / width_px


def lateral_offset_m(x_px: float, camera: Camera, distance_m: float) -> float:
    """X: metres right of the camera's line of sight of a point at image column x and distance Z."""
    return (x_px - camera.cx_px) * distance_m / camera.focal_px


def ground_distance_m(camera: Camera, y_bottom_px: float, horizon_y_px: float) -> float | None:
    """Distance to where a vehicle touches a flat road (its box's bottom edge), from the camera height and
    the horizon row; None without a height or when the contact is not below the horizon."""
    if camera.height_m is None or y_bottom_px <= horizon_y_px + 1.0:
        return None
    return camera.focal_px * camera.height_m / (y_bottom_px - horizon_y_px)
