"""The camera of a job: focal length in pixels from the `camera` param (`focal_px` or `hfov_deg`), or a stated
default, and the checks of that param at submit. Pinhole model, square pixels, principal point at the image
centre, no lens distortion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from framequeue.errors import InvalidParams
from framequeue.pipelines.params import mapping, number

#: bounds of the camera fields: a pinhole beyond ~170 degrees is a fisheye, which this geometry does not model
HFOV_DEG_RANGE: Final = (10.0, 170.0)
FOCAL_PX_RANGE: Final = (50.0, 100_000.0)
#: bounds of the other fields a pipeline may take (road: mounting height, horizon row)
EXTRA_RANGES: Final[dict[str, tuple[float, float]]] = {"height_m": (0.3, 6.0), "horizon_y_px": (0.0, 100_000.0)}


def check_camera(camera: Any, extras: frozenset[str] = frozenset()) -> dict[str, float] | None:
    """None (the default focal length), or exactly one of focal_px / hfov_deg, plus the `extras` a pipeline
    takes (of EXTRA_RANGES) if given; InvalidParams naming the field otherwise."""
    if camera is None:
        return None
    cam = mapping(camera, "camera", {"focal_px", "hfov_deg", *extras})
    given = [k for k in ("focal_px", "hfov_deg") if k in cam]
    if len(given) != 1:
        raise InvalidParams(
            f"camera: give exactly one of focal_px and hfov_deg (got {' and '.join(given) or 'neither'}); "
            f"leave camera out to use the default focal length"
        )
    out = {}
    if "focal_px" in cam:
        out["focal_px"] = number(cam["focal_px"], "camera.focal_px", *FOCAL_PX_RANGE)
    else:
        out["hfov_deg"] = number(cam["hfov_deg"], "camera.hfov_deg", *HFOV_DEG_RANGE)
    for key in sorted(extras):
        if key in cam:
            out[key] = number(cam[key], f"camera.{key}", *EXTRA_RANGES[key])
    return out


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
