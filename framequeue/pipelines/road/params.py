"""The `road` pipeline's params: defaults, following-rule profiles and the checks done at submit.

Every refusal is InvalidParams naming the field by its dotted path (`camera.hfov_deg`,
`speed_track[3]`, `following.max_time_gap_s`), so a user sees what to fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from framequeue.errors import InvalidParams
from framequeue.models.formats import is_result_format
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.camera import check_camera
from framequeue.pipelines.params import ENCODE_DEFAULTS, check_encode, check_unknown, mapping, model_version, number
from framequeue.pipelines.speed import MAX_SPEED_MPS, check_speed

#: real rear widths of the vehicle classes the lead may be, metres (a class missing here is never the lead)
#: (COCO exports name motorcycles `motorcycle` or `motorbike`)
VEHICLE_WIDTHS_M: Final[dict[str, float]] = {
    "car": 1.8,
    "truck": 2.5,
    "bus": 2.5,
    "motorcycle": 0.8,
    "motorbike": 0.8,
}
#: named following rules: (max_time_gap_s, min_duration_s, min_speed_mps). `fleet` is the common fleet
#: rule (0.7 s held 15 s above 35 mph); the others are the driving-school rules, for demos and short clips
FOLLOWING_PROFILES: Final[dict[str, dict[str, float]]] = {
    "fleet": {"max_time_gap_s": 0.7, "min_duration_s": 15.0, "min_speed_mps": 15.6},
    "two_second_rule": {"max_time_gap_s": 2.0, "min_duration_s": 3.0, "min_speed_mps": 11.0},
    "three_second_rule": {"max_time_gap_s": 3.0, "min_duration_s": 3.0, "min_speed_mps": 11.0},
}
DEFAULT_PROFILE: Final = "fleet"
COLLISION_DEFAULTS: Final[dict[str, float]] = {"max_ttc_s": 2.5, "min_duration_s": 0.5}
#: camera fields beyond the focal length that the road geometry uses
CAMERA_EXTRAS: Final = frozenset({"height_m", "horizon_y_px"})
#: lane formats the lane model may have
LANE_FORMATS: Final = {"lstr"}

DEFAULTS: Final[dict[str, Any]] = {
    "model": "yolox_nano",
    "model_version": None,
    "lane_model": "lstr",
    "lane_model_version": None,
    "sample_fps": None,
    #: a vehicle is a lead candidate from this detector score up
    "score_threshold": 0.35,
    "nms_iou": 0.45,
    "camera": None,
    "speed_mps": None,
    "speed_track": None,
    "vehicle_widths_m": None,
    #: bottom share of the frame where the ego vehicle's hood is: no box centred there is a lead
    "hood_fraction": 0.12,
    "lane_score_threshold": 0.5,
    "following": None,
    "collision": None,
    **ENCODE_DEFAULTS,
}


def validate(params: Mapping[str, Any], models: ModelRepository) -> dict[str, Any]:
    """Params with defaults filled in, model versions pinned, profiles resolved into numbers."""
    check_unknown(params, DEFAULTS)
    p = {**DEFAULTS, **params}
    detector = model_version(models, p["model"], p["model_version"], "model", "a detection model")
    if is_result_format(detector.format):
        raise InvalidParams(
            f"model: {detector.ref} is a {detector.format!r} model (faces or lanes); model takes a detection "
            f"model such as yolox or nanodet"
        )
    p["model_version"] = detector.version
    lanes = model_version(models, p["lane_model"], p["lane_model_version"], "lane_model", "a lane model", LANE_FORMATS)
    p["lane_model_version"] = lanes.version
    if p["sample_fps"] is not None:
        p["sample_fps"] = number(p["sample_fps"], "sample_fps", low=0.0, low_open=True)
    p["score_threshold"] = number(p["score_threshold"], "score_threshold", 0.0, 1.0)
    p["nms_iou"] = number(p["nms_iou"], "nms_iou", 0.0, 1.0)
    p["lane_score_threshold"] = number(p["lane_score_threshold"], "lane_score_threshold", 0.0, 1.0)
    p["hood_fraction"] = number(p["hood_fraction"], "hood_fraction", 0.0, 0.5)
    p["camera"] = check_camera(p["camera"], CAMERA_EXTRAS)
    p["speed_mps"], p["speed_track"] = check_speed(p["speed_mps"], p["speed_track"])
    widths = {**VEHICLE_WIDTHS_M, **mapping(p["vehicle_widths_m"] or {}, "vehicle_widths_m", set(detector.classes))}
    p["vehicle_widths_m"] = {
        name: number(w, f"vehicle_widths_m.{name}", 0.3, 5.0) for name, w in widths.items() if name in detector.classes
    }
    if not p["vehicle_widths_m"]:
        raise InvalidParams(
            f"model: {detector.ref} has none of the vehicle classes {', '.join(VEHICLE_WIDTHS_M)}; "
            f"name its vehicle classes and their widths in vehicle_widths_m"
        )
    p["following"] = check_following(p["following"])
    p["collision"] = check_collision(p["collision"])
    check_encode(p)
    return p


def check_following(following: Any) -> dict[str, Any]:
    """The following rule: a named profile (default `fleet`) with any of its numbers overridden."""
    known = {"profile", "max_time_gap_s", "min_duration_s", "min_speed_mps"}
    f = mapping(following or {}, "following", known)
    profile = f.get("profile", DEFAULT_PROFILE)
    if profile not in FOLLOWING_PROFILES:
        raise InvalidParams(f"following.profile: must be one of {', '.join(FOLLOWING_PROFILES)}, got {profile!r}")
    rule = {"profile": profile, **FOLLOWING_PROFILES[profile]}
    bounds = {"max_time_gap_s": (0.1, 10.0), "min_duration_s": (0.0, 3600.0), "min_speed_mps": (0.0, MAX_SPEED_MPS)}
    for key, (low, high) in bounds.items():
        if key in f:
            rule[key] = number(f[key], f"following.{key}", low, high)
    return rule


def check_collision(collision: Any) -> dict[str, float]:
    c = mapping(collision or {}, "collision", set(COLLISION_DEFAULTS))
    rule = dict(COLLISION_DEFAULTS)
    if "max_ttc_s" in c:
        rule["max_ttc_s"] = number(c["max_ttc_s"], "collision.max_ttc_s", 0.1, 10.0)
    if "min_duration_s" in c:
        rule["min_duration_s"] = number(c["min_duration_s"], "collision.min_duration_s", 0.0, 60.0)
    return rule


def hfov_deg(focal_px: float, width_px: int) -> float:
    return math.degrees(2 * math.atan(width_px / 2 / focal_px))
