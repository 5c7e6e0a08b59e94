"""The `driver` pipeline's params: defaults and the checks done at submit.

Every refusal is InvalidParams naming the field by its dotted path (`off_road.yaw_deg`, `speed_track[2]`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from framequeue.errors import InvalidParams
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.camera import check_camera
from framequeue.pipelines.params import ENCODE_DEFAULTS, check_encode, check_unknown, mapping, model_version, number
from framequeue.pipelines.speed import MAX_SPEED_MPS, check_speed

FACE_FORMATS: Final = {"yunet", "blazeface"}
LANDMARK_FORMATS: Final = {"facemesh"}
#: off road past these deviations from the neutral pose, back on road below the second pair (hysteresis)
OFF_ROAD_DEFAULTS: Final[dict[str, float]] = {
    "yaw_deg": 30.0,
    "pitch_down_deg": 20.0,
    "yaw_back_deg": 25.0,
    "pitch_back_deg": 15.0,
}
#: the distraction rules: one long glance, or a sum of glances in a window; gated by speed when one is given
#: (50 km/h); the driver's face gone this long is an event of its own
DISTRACTION_DEFAULTS: Final[dict[str, float]] = {
    "long_s": 3.0,
    "short_total_s": 10.0,
    "short_window_s": 30.0,
    "min_speed_mps": 50 / 3.6,
    "not_visible_s": 3.0,
}
#: the One Euro filter on each angle (Casiez et al.'s parameters: Hz, Hz per degree/s, Hz)
SMOOTHING_DEFAULTS: Final[dict[str, float]] = {"min_cutoff_hz": 1.0, "beta": 0.05, "d_cutoff_hz": 1.0}
#: how far a neutral pose may be from looking straight at the camera, degrees
MAX_NEUTRAL_DEG: Final = 30.0

DEFAULTS: Final[dict[str, Any]] = {
    "face_model": "yunet",
    "face_model_version": None,
    "landmark_model": "facemesh",
    "landmark_model_version": None,
    "sample_fps": None,
    "face_score_threshold": 0.6,
    "camera": None,
    "speed_mps": None,
    "speed_track": None,
    "neutral_pose": None,
    "off_road": None,
    "distraction": None,
    "smoothing": None,
    **ENCODE_DEFAULTS,
}


def validate(params: Mapping[str, Any], models: ModelRepository) -> dict[str, Any]:
    """Params with defaults filled in, model versions pinned, the rule blocks completed with their defaults."""
    check_unknown(params, DEFAULTS)
    p = {**DEFAULTS, **params}
    face = model_version(models, p["face_model"], p["face_model_version"], "face_model", "a face model", FACE_FORMATS)
    p["face_model_version"] = face.version
    marks = model_version(
        models,
        p["landmark_model"],
        p["landmark_model_version"],
        "landmark_model",
        "a landmark model",
        LANDMARK_FORMATS,
    )
    p["landmark_model_version"] = marks.version
    if p["sample_fps"] is not None:
        p["sample_fps"] = number(p["sample_fps"], "sample_fps", low=0.0, low_open=True)
    p["face_score_threshold"] = number(p["face_score_threshold"], "face_score_threshold", 0.0, 1.0)
    p["camera"] = check_camera(p["camera"])
    p["speed_mps"], p["speed_track"] = check_speed(p["speed_mps"], p["speed_track"])
    p["neutral_pose"] = check_neutral(p["neutral_pose"])
    p["off_road"] = block(p["off_road"], "off_road", OFF_ROAD_DEFAULTS, 1.0, 90.0)
    if p["off_road"]["yaw_back_deg"] > p["off_road"]["yaw_deg"]:
        raise InvalidParams("off_road.yaw_back_deg: must not exceed off_road.yaw_deg (it is the way back)")
    if p["off_road"]["pitch_back_deg"] > p["off_road"]["pitch_down_deg"]:
        raise InvalidParams("off_road.pitch_back_deg: must not exceed off_road.pitch_down_deg (it is the way back)")
    p["distraction"] = block(p["distraction"], "distraction", DISTRACTION_DEFAULTS, 0.0, 3600.0)
    d = p["distraction"]
    if d["min_speed_mps"] > MAX_SPEED_MPS:
        raise InvalidParams(f"distraction.min_speed_mps: must be <= {MAX_SPEED_MPS:g}, got {d['min_speed_mps']!r}")
    if not 0 < d["short_total_s"] <= d["short_window_s"]:
        raise InvalidParams("distraction.short_total_s: must be > 0 and within distraction.short_window_s")
    p["smoothing"] = block(p["smoothing"], "smoothing", SMOOTHING_DEFAULTS, 0.0, 100.0)
    for key in ("min_cutoff_hz", "d_cutoff_hz"):
        if p["smoothing"][key] <= 0:
            raise InvalidParams(f"smoothing.{key}: must be > 0, got {p['smoothing'][key]!r}")
    check_encode(p)
    return p


def block(value: Any, field: str, defaults: Mapping[str, float], low: float, high: float) -> dict[str, float]:
    """A block of numbers (`off_road`, `distraction`, `smoothing`): the given keys checked, the rest defaulted."""
    given = mapping(value or {}, field, set(defaults))
    return {key: number(given[key], f"{field}.{key}", low, high) if key in given else d for key, d in defaults.items()}


def check_neutral(value: Any) -> dict[str, float] | None:
    """The driver's neutral pose given by the job (`{"yaw_deg", "pitch_deg"}`), or None to measure it."""
    if value is None:
        return None
    pose = mapping(value, "neutral_pose", {"yaw_deg", "pitch_deg"})
    if set(pose) != {"yaw_deg", "pitch_deg"}:
        raise InvalidParams("neutral_pose: give both yaw_deg and pitch_deg, or leave it out to measure it")
    return {
        k: number(pose[k], f"neutral_pose.{k}", -MAX_NEUTRAL_DEG, MAX_NEUTRAL_DEG) for k in ("yaw_deg", "pitch_deg")
    }
