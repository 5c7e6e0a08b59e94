"""The road pipeline's submit-time checks: every bad param is refused with invalid_params naming its field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from framequeue.errors import InvalidParams, UnknownModel
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.road.pipeline import RoadPipeline
from tests.conftest import require_shared
from tests.unit.synthetic import write_tiny_yolox

pytest.importorskip("onnx", reason="the tiny test model is built with the onnx package")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> ModelRepository:
    root = tmp_path_factory.mktemp("road-params")
    repo = ModelRepository(root / "models")
    model, classes = write_tiny_yolox(root / "src")
    repo.add("tiny", model, "yolox", classes)
    repo.add("lstr", require_shared("models", "lstr", "lstr_360x640.onnx"), "lstr", None)
    return repo


def validate(repo: ModelRepository, **params: Any) -> dict[str, Any]:
    return RoadPipeline().validate({"model": "tiny", **params}, repo)


def test_defaults_pin_versions_and_resolve_the_fleet_rule(repo: ModelRepository) -> None:
    p = validate(repo)
    assert (p["model_version"], p["lane_model"], p["lane_model_version"]) == (1, "lstr", 1)
    assert p["following"] == {"profile": "fleet", "max_time_gap_s": 0.7, "min_duration_s": 15.0, "min_speed_mps": 15.6}
    assert p["collision"] == {"max_ttc_s": 2.5, "min_duration_s": 0.5}
    # the tiny model knows `car` only of the vehicle classes
    assert p["vehicle_widths_m"] == {"car": 1.8}
    assert (p["camera"], p["speed_mps"], p["speed_track"]) == (None, None, None)
    assert RoadPipeline().validate(p, repo) == p


def test_profiles_and_overrides(repo: ModelRepository) -> None:
    p = validate(repo, following={"profile": "two_second_rule", "min_duration_s": 5})
    assert p["following"] == {"profile": "two_second_rule", "max_time_gap_s": 2.0, "min_duration_s": 5.0,
                              "min_speed_mps": 11.0}
    assert validate(repo, following={"max_time_gap_s": 1.0})["following"]["max_time_gap_s"] == 1.0


def test_camera_and_speed_forms(repo: ModelRepository) -> None:
    assert validate(repo, camera={"hfov_deg": 60})["camera"] == {"hfov_deg": 60.0}
    assert validate(repo, camera={"focal_px": 1200, "height_m": 1.4})["camera"] == {"focal_px": 1200.0,
                                                                                     "height_m": 1.4}
    assert validate(repo, speed_mps=27)["speed_mps"] == 27.0
    track = validate(repo, speed_track=[[0, 20], [5.5, 22.5], [9, 0]])["speed_track"]
    assert track == [[0.0, 20.0], [5.5, 22.5], [9.0, 0.0]]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"speed_track": [[0, 20], [2, 21], [1, 22]]}, r"speed_track\[2\]"),
        ({"speed_track": [[0, 20], [0, 21]]}, r"speed_track\[1\]"),
        ({"speed_track": [[0, 20], [1, -3]]}, r"speed_track\[1\].speed_mps"),
        ({"speed_track": [[0, 20], [1, float("nan")]]}, r"speed_track\[1\]"),
        ({"speed_track": [[float("nan"), 20], [1, 2]]}, r"speed_track\[0\]"),
        ({"speed_track": [[-1, 20], [1, 2]]}, r"speed_track\[0\].t_s"),
        ({"speed_track": [[0, 20]]}, "speed_track"),
        ({"speed_track": [[0, 20, 1], [1, 2, 3]]}, r"speed_track\[0\]"),
        ({"speed_track": "fast"}, "speed_track"),
        ({"speed_track": [[0, 1], [1, 2]], "speed_mps": 3}, "speed_track"),
        ({"speed_mps": -1}, "speed_mps"),
        ({"speed_mps": float("inf")}, "speed_mps"),
        ({"speed_mps": True}, "speed_mps"),
        ({"camera": {"focal_px": 1000, "hfov_deg": 60}}, "camera"),
        ({"camera": {"height_m": 1.2}}, "camera"),
        ({"camera": {}}, "camera"),
        ({"camera": {"hfov_deg": 179}}, "camera.hfov_deg"),
        ({"camera": {"hfov_deg": 5}}, "camera.hfov_deg"),
        ({"camera": {"focal_px": 0}}, "camera.focal_px"),
        ({"camera": {"focal_px": float("nan")}}, "camera.focal_px"),
        ({"camera": {"focal_px": 900, "height_m": 30}}, "camera.height_m"),
        ({"camera": {"focal_px": 900, "tilt": 3}}, "camera.tilt"),
        ({"camera": "wide"}, "camera"),
        ({"following": {"profile": "tailgater"}}, "following.profile"),
        ({"following": {"max_time_gap_s": 0}}, "following.max_time_gap_s"),
        ({"following": {"min_duration_s": -1}}, "following.min_duration_s"),
        ({"following": {"gap": 1}}, "following.gap"),
        ({"collision": {"max_ttc_s": 0}}, "collision.max_ttc_s"),
        ({"vehicle_widths_m": {"car": 9}}, "vehicle_widths_m.car"),
        ({"vehicle_widths_m": {"zebra": 1}}, "vehicle_widths_m.zebra"),
        ({"hood_fraction": 0.8}, "hood_fraction"),
        ({"sample_fps": 0}, "sample_fps"),
        ({"lane_score_threshold": 2}, "lane_score_threshold"),
        ({"model": "lstr"}, "model"),
        ({"lane_model": "tiny"}, "lane_model"),
        ({"lane_model_version": 0}, "lane_model_version"),
        ({"batch_size": 0}, "batch_size"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_params_name_their_field(repo: ModelRepository, bad: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams, match=f"^{field}: "):
        validate(repo, **bad)


def test_a_detector_without_vehicle_classes_is_refused(tmp_path: Path, repo: ModelRepository) -> None:
    model, _ = write_tiny_yolox(tmp_path / "src")
    (tmp_path / "animals.txt").write_text("cat\ndog\n")
    repo.add("animals", model, "yolox", tmp_path / "animals.txt")
    with pytest.raises(InvalidParams, match=r"^model: .*none of the vehicle classes"):
        validate(repo, model="animals")


def test_unknown_models(repo: ModelRepository) -> None:
    with pytest.raises(UnknownModel):
        validate(repo, lane_model="nope")
    with pytest.raises(UnknownModel):
        validate(repo, model="tiny", model_version=3)
