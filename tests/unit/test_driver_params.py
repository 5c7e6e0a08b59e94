"""The driver pipeline's submit-time checks: the defaults, and every bad param refused with invalid_params naming
its field by its dotted path."""

from __future__ import annotations

from typing import Any

import pytest

from framequeue.errors import InvalidParams, UnknownModel
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.driver.params import DISTRACTION_DEFAULTS, OFF_ROAD_DEFAULTS, SMOOTHING_DEFAULTS
from framequeue.pipelines.driver.pipeline import DriverPipeline
from tests.conftest import require_shared


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> ModelRepository:
    pytest.importorskip("ai_edge_litert", reason="the FaceMesh model needs pip install 'framequeue[tflite]'")
    repo = ModelRepository(tmp_path_factory.mktemp("driver-params") / "models")
    repo.add("yunet", require_shared("models", "yunet", "yunet_s_640_640.onnx"), "yunet", None)
    repo.add(
        "facemesh",
        require_shared("models", "mediapipe", "face_landmark.tflite"),
        "facemesh",
        None,
        canonical_face=require_shared("models", "mediapipe", "canonical_face_model.obj"),
    )
    repo.add("blazeface", require_shared("models", "mediapipe", "face_detection_short_range.onnx"), "blazeface", None)
    repo.add("lstr", require_shared("models", "lstr", "lstr_360x640.onnx"), "lstr", None)
    return repo


def validate(repo: ModelRepository, **params: Any) -> dict[str, Any]:
    return DriverPipeline().validate(params, repo)


def test_defaults(repo: ModelRepository) -> None:
    p = validate(repo)
    assert (p["face_model"], p["face_model_version"]) == ("yunet", 1)
    assert (p["landmark_model"], p["landmark_model_version"]) == ("facemesh", 1)
    assert p["off_road"] == {"yaw_deg": 30.0, "pitch_down_deg": 20.0, "yaw_back_deg": 25.0, "pitch_back_deg": 15.0}
    assert p["distraction"] == {
        "long_s": 3.0,
        "short_total_s": 10.0,
        "short_window_s": 30.0,
        "min_speed_mps": pytest.approx(13.8889, abs=1e-4),  # 50 km/h
        "not_visible_s": 3.0,
    }
    assert p["smoothing"] == SMOOTHING_DEFAULTS
    assert (p["sample_fps"], p["face_score_threshold"]) == (None, 0.6)
    assert (p["camera"], p["speed_mps"], p["speed_track"], p["neutral_pose"]) == (None, None, None, None)
    assert p["batch_size"] == 4
    # validating the result again changes nothing (a retried job sees the same params)
    assert validate(repo, **p) == p


def test_overrides_are_merged_with_the_block_defaults(repo: ModelRepository) -> None:
    p = validate(
        repo,
        off_road={"yaw_deg": 40},
        distraction={"long_s": 2.0},
        neutral_pose={"yaw_deg": -12, "pitch_deg": 8.5},
        camera={"hfov_deg": 100},
        speed_track=[[0, 10], [30, 20]],
    )
    assert p["off_road"] == {**OFF_ROAD_DEFAULTS, "yaw_deg": 40.0}
    assert p["distraction"] == {**DISTRACTION_DEFAULTS, "long_s": 2.0}
    assert p["neutral_pose"] == {"yaw_deg": -12.0, "pitch_deg": 8.5}
    assert p["camera"] == {"hfov_deg": 100.0}
    assert p["speed_track"] == [[0.0, 10.0], [30.0, 20.0]]


def test_the_blazeface_face_model_validates(repo: ModelRepository) -> None:
    p = validate(repo, face_model="blazeface")
    assert (p["face_model"], p["face_model_version"]) == ("blazeface", 1)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"face_model": "lstr"}, "face_model"),
        ({"face_model": "facemesh"}, "face_model"),
        ({"face_model": 3}, "face_model"),
        ({"face_model_version": 0}, "face_model_version"),
        ({"landmark_model": "yunet"}, "landmark_model"),
        ({"landmark_model_version": "1"}, "landmark_model_version"),
        ({"sample_fps": 0}, "sample_fps"),
        ({"face_score_threshold": 1.5}, "face_score_threshold"),
        ({"camera": {"focal_px": 1000, "hfov_deg": 60}}, "camera"),
        ({"camera": {"hfov_deg": 179}}, "camera.hfov_deg"),
        ({"camera": {"hfov_deg": 5}}, "camera.hfov_deg"),
        ({"camera": {"focal_px": 900, "height_m": 1.2}}, "camera.height_m"),  # the road's field, not the driver's
        ({"speed_track": [[0, 20], [0, 21]]}, r"speed_track\[1\]"),
        ({"speed_track": [[0, 20], [2, 21], [1, 22]]}, r"speed_track\[2\]"),
        ({"speed_track": [[0, 20], [1, -3]]}, r"speed_track\[1\].speed_mps"),
        ({"speed_track": [[0, 20], [1, float("nan")]]}, r"speed_track\[1\]"),
        ({"speed_track": [[0, 1], [1, 2]], "speed_mps": 3}, "speed_track"),
        ({"speed_mps": -1}, "speed_mps"),
        ({"neutral_pose": {"yaw_deg": 5}}, "neutral_pose"),
        ({"neutral_pose": {"yaw_deg": 45, "pitch_deg": 0}}, "neutral_pose.yaw_deg"),
        ({"neutral_pose": {"yaw_deg": 0, "pitch_deg": float("nan")}}, "neutral_pose.pitch_deg"),
        ({"neutral_pose": {"yaw_deg": 0, "pitch_deg": 0, "roll_deg": 0}}, "neutral_pose.roll_deg"),
        ({"neutral_pose": "straight"}, "neutral_pose"),
        ({"off_road": {"yaw_deg": 0}}, "off_road.yaw_deg"),
        ({"off_road": {"pitch_down_deg": 91}}, "off_road.pitch_down_deg"),
        ({"off_road": {"yaw_back_deg": 31}}, "off_road.yaw_back_deg"),
        ({"off_road": {"yaw_deg": 20}}, "off_road.yaw_back_deg"),  # the default way back (25) is above it
        ({"off_road": {"pitch_back_deg": 21}}, "off_road.pitch_back_deg"),
        ({"off_road": {"yaw_deg": True}}, "off_road.yaw_deg"),
        ({"off_road": {"tilt_deg": 10}}, "off_road.tilt_deg"),
        ({"off_road": [30]}, "off_road"),
        ({"distraction": {"short_total_s": 31}}, "distraction.short_total_s"),
        ({"distraction": {"short_total_s": 0}}, "distraction.short_total_s"),
        ({"distraction": {"long_s": -1}}, "distraction.long_s"),
        ({"distraction": {"min_speed_mps": 500}}, "distraction.min_speed_mps"),
        ({"distraction": {"window_s": 30}}, "distraction.window_s"),
        ({"smoothing": {"beta": -0.1}}, "smoothing.beta"),
        ({"smoothing": {"min_cutoff_hz": 0}}, "smoothing.min_cutoff_hz"),
        ({"smoothing": {"d_cutoff_hz": 0}}, "smoothing.d_cutoff_hz"),
        ({"smoothing": {"alpha": 1}}, "smoothing.alpha"),
        ({"batch_size": 0}, "batch_size"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_params_name_their_field(repo: ModelRepository, bad: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams, match=f"^{field}: "):
        validate(repo, **bad)


def test_unknown_models(repo: ModelRepository) -> None:
    with pytest.raises(UnknownModel):
        validate(repo, face_model="nope")
    with pytest.raises(UnknownModel):
        validate(repo, landmark_model_version=2)
