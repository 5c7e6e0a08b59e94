"""The `road` pipeline over HTTP against `framequeue up`: the real dashcam clip, a synthetic approach whose
truth is known by construction, and bad params refused at submit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import httpx
import numpy as np
import pytest

from tests.acceptance.deployment import Deployment
from tests.conftest import require_shared
from tests.roadgen import (
    APPROACH_S,
    Scene,
    approach_closing_mps,
    approach_distance_m,
    write_approach,
)

pytestmark = pytest.mark.slow

#: the synthetic scene: focal length, camera height, car width, frame rate
SCENE = Scene(focal_px=1400.0, camera_height_m=1.2, car_width_m=1.8, fps=25)
EGO_SPEED_MPS = 20.0


@pytest.fixture(scope="module")
def road(tmp_path_factory: pytest.TempPathFactory, yolox_model_dir: Path) -> Iterator[Deployment]:
    """`framequeue up` with YOLOX-nano and LSTR registered, as the demo does."""
    dep = Deployment(tmp_path_factory.mktemp("road"), lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2)
    dep.register_yolox(yolox_model_dir)
    dep.register_lstr(require_shared("models", "lstr"))
    dep.start("up", "up", "--workers", "2")
    dep.wait_ready()
    yield dep
    dep.stop()


def run(dep: Deployment, video: Path, params: dict[str, Any], out: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    submitted = dep.submit_file(video, params, pipeline="road")
    record = dep.wait_done(submitted["id"], timeout_s=240)
    assert record["status"] == "succeeded", record
    assert set(record["outputs"]) == {"video", "road", "contact_sheet", "timeline"}
    return record, {name: dep.client.download(record["id"], name, out) for name in record["outputs"]}


def check_video(path: Path, frames: int, size_wh: tuple[int, int], rate: Fraction) -> None:
    head = path.read_bytes()[:1 << 16]
    assert 0 <= head.find(b"moov") < head.find(b"mdat") or head.find(b"mdat") < 0, "index not at the front"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", *size_wh)
        assert stream.average_rate == rate
        assert sum(1 for _ in container.decode(stream)) == frames


def test_dashcam_clip_lanes_tracks_and_outputs(road: Deployment, dashcam_video: Path, tmp_path: Path) -> None:
    params = {"speed_mps": 27, "following": {"profile": "two_second_rule"}}
    record, files = run(road, dashcam_video, params, tmp_path)
    assert record["progress"]["frames_done"] == 221
    check_video(files["video"], 221, (960, 540), Fraction(25))

    doc = json.loads(files["road"].read_text())
    frames = doc["frames"]
    assert [f["index"] for f in frames] == list(range(221))
    assert frames[100]["t_s"] == pytest.approx(4.0)
    two_lanes = sum(len(f["lanes"]) >= 2 for f in frames) / len(frames)
    ego_lane = sum(f["ego_lane"]["source"] == "lanes" for f in frames) / len(frames)
    assert two_lanes >= 0.95 and ego_lane >= 0.95, (two_lanes, ego_lane)
    for f in frames:
        assert f["speed_mps"] == 27.0
        for lane in f["lanes"]:
            points = np.asarray(lane["points"])
            assert lane["score"] >= 0.5 and (points >= 0).all() and (points[:, 0] < 960).all()
        if f["ego_lane"]["source"] == "lanes":
            polygon = np.asarray(f["ego_lane"]["polygon"], np.float32)
            # the ego lane lies ahead: it holds the bottom-centre of the frame
            assert cv2.pointPolygonTest(polygon.reshape(-1, 1, 2), (480.0, 530.0), False) >= 0
    ids = sorted({t["id"] for f in frames for t in f["tracks"]})
    assert ids and ids == list(range(1, len(ids) + 1)), ids
    assert {t["class"] for f in frames for t in f["tracks"]} <= {"car", "truck", "bus", "motorbike"}
    assert doc["camera"]["source"] == "default" and doc["camera"]["focal_px"] == 960
    assert any("no camera was given" in a for a in doc["assumptions"])
    assert doc["summary"]["frames"] == 221 and doc["video"]["frames"] == 221

    timeline = cv2.imread(str(files["timeline"]))
    sheet = cv2.imread(str(files["contact_sheet"]))
    assert timeline is not None and timeline.shape[0] >= 500 and timeline.shape[1] >= 800
    assert sheet is not None and sheet.shape[1] >= 960


def test_synthetic_approach_gives_the_constructed_numbers(road: Deployment, tmp_path: Path) -> None:
    clip = tmp_path / "approach.mp4"
    write_approach(clip, require_shared("media", "solidWhiteRight.mp4"), SCENE, approach_distance_m, APPROACH_S)
    params = {
        "speed_mps": EGO_SPEED_MPS,
        "camera": {"focal_px": SCENE.focal_px},
        "following": {"profile": "two_second_rule"},
    }
    record, files = run(road, clip, params, tmp_path / "out")
    doc = json.loads(files["road"].read_text())
    frames = doc["frames"]
    assert len(frames) == 300
    # the job record carries the pipeline's events as they are in road.json
    assert record["events"] == doc["events"] and record["events_truncated"] is False
    assert any(e["type"] == "following_too_close" for e in record["events"])
    assert [(a["attempt"], a["outcome"]) for a in record["attempt_history"]] == [(1, "succeeded")]

    leads = [(f["t_s"], f["lead"]) for f in frames if f["lead"] is not None]
    assert sum(t >= 1.0 for t, _ in leads) >= 0.95 * sum(f["t_s"] >= 1.0 for f in frames)
    assert len({lead["track_id"] for _, lead in leads}) == 1, "the lead changed identity"
    distance_err = [abs(lead["distance_m"] / approach_distance_m(t) - 1) for t, lead in leads]
    assert float(np.percentile(distance_err, 90)) <= 0.08
    gap_err = [abs(lead["time_gap_s"] / (approach_distance_m(t) / EGO_SPEED_MPS) - 1) for t, lead in leads]
    assert float(np.percentile(gap_err, 90)) <= 0.08

    # TTC where the 1 s fit window lies inside a closing phase and the truth (Z / closing speed) is well under
    # the 10 s above which none is reported
    settled = [
        (t, lead) for t, lead in leads
        if (1.5 <= t < 6.0 or 10.0 <= t < 11.0) and approach_distance_m(t) / approach_closing_mps(t) < 9.0
    ]
    ttc_err = [
        abs(lead["ttc_s"] / (approach_distance_m(t) / approach_closing_mps(t)) - 1) if lead["ttc_s"] else 1.0
        for t, lead in settled
    ]
    assert len(settled) > 60
    assert float(np.median(ttc_err)) <= 0.15 and float(np.percentile(ttc_err, 90)) <= 0.35
    # holding the distance, nothing closes: no TTC once the window has left the approach
    holding = [lead["ttc_s"] for t, lead in leads if 7.2 <= t < 9.0]
    assert holding and sum(ttc is not None for ttc in holding) <= 0.1 * len(holding)

    events = {e["type"]: e for e in doc["events"]}
    assert len(doc["events"]) == 2, doc["events"]
    # following: time gap under 2 s from 40 m (t = 2.5 s) to the end; nearest at 12 m = 0.6 s
    follow = events["following_too_close"]
    assert abs(follow["start_s"] - 2.5) <= 0.5 and follow["end_s"] == pytest.approx(APPROACH_S)
    assert follow["min_time_gap_s"] == pytest.approx(12.0 / EGO_SPEED_MPS, rel=0.1)
    # collision warning: TTC under 2.5 s from 17.5 m (t = 10.21 s) until the closing stops at 11 s
    fcw = events["forward_collision_warning"]
    assert abs(fcw["start_s"] - 10.21) <= 0.4 and 11.0 <= fcw["end_s"] <= 11.8, fcw
    assert fcw["min_ttc_s"] == pytest.approx(12.0 / 7.0, rel=0.25)
    assert follow["lead_track_id"] == fcw["lead_track_id"] == leads[-1][1]["track_id"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"speed_track": [[0, 20], [3, 21], [2, 22]]}, "speed_track[2]"),
        ({"speed_track": [[0, 20], [1, -4]]}, "speed_track[1].speed_mps"),
        ({"camera": {"focal_px": 1000, "hfov_deg": 50}}, "camera"),
        ({"camera": {"hfov_deg": 200}}, "camera.hfov_deg"),
        ({"model": "lstr"}, "model"),
        ({"lane_model": "yolox_nano"}, "lane_model"),
    ],
)
def test_bad_params_are_refused_at_submit(road: Deployment, small_clip: Path, params: dict[str, Any],
                                          field: str) -> None:
    key = road.client.upload(small_clip)["key"]
    response = httpx.post(f"{road.base_url}/v1/jobs", json={"pipeline": "road", "input": {"key": key},
                                                            "params": params})
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "invalid_params"
    assert problem["detail"].startswith(f"{field}: "), problem
