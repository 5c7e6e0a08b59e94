"""The `driver` pipeline over HTTP against `framequeue up`: the real head-pose clips (GIFs), a video without a
face, and wrong models refused at submit."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import httpx
import pytest

from tests.acceptance.deployment import Deployment
from tests.conftest import require_shared
from tests.mediagen import make_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """`framequeue up` with YuNet and FaceMesh registered, as the demo does (and LSTR, to refuse it)."""
    dep = Deployment(tmp_path_factory.mktemp("driver"), lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2)
    models = require_shared("models")
    dep.register_faces(models)
    dep.register_lstr(models / "lstr")
    dep.start("up", "up", "--workers", "2")
    dep.wait_ready()
    yield dep
    dep.stop()


def run(dep: Deployment, video: Path, out: Path, params: dict[str, Any] | None = None) -> dict[str, Any]:
    submitted = dep.submit_file(video, params or {}, pipeline="driver")
    record = dep.wait_done(submitted["id"], timeout_s=180)
    assert record["status"] == "succeeded", record
    assert set(record["outputs"]) == {"video", "driver", "contact_sheet", "timeline"}
    files = {name: dep.client.download(record["id"], name, out) for name in record["outputs"]}
    with av.open(str(files["video"])) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        size = (stream.codec_context.name, stream.width, stream.height)
    doc: dict[str, Any] = json.loads(files["driver"].read_text())
    assert frames == len(doc["frames"]) == record["progress"]["frames_total"]
    assert record["events"] == doc["events"]  # the job record carries the pipeline's events
    assert size == ("h264", doc["video"]["width"] & ~1, doc["video"]["height"] & ~1)
    for name in ("timeline", "contact_sheet"):
        image = cv2.imread(str(files[name]))
        assert image is not None and image.shape[1] >= 480
    return doc


def poses(doc: dict[str, Any], track_id: int) -> list[tuple[float, dict[str, float]]]:
    return [(f["t_s"], face["head_pose"]) for f in doc["frames"] for face in f["faces"]
            if face["track_id"] == track_id and face["head_pose"] is not None]


def assert_no_roll_flip(pose_track: list[tuple[float, dict[str, float]]]) -> None:
    rolls = [p["roll_deg"] for _, p in pose_track]
    assert max(abs(b - a) for a, b in itertools.pairwise(rolls)) < 30, rolls


@pytest.mark.parametrize(("clip", "frames"), [("female", 23), ("male", 62)])
def test_single_person_clip_has_the_driver_on_every_frame(driver: Deployment, tmp_path: Path, clip: str,
                                                          frames: int) -> None:
    gif = require_shared("media", f"head-pose-face-detection-{clip}.gif")
    doc = run(driver, gif, tmp_path)
    assert len(doc["frames"]) == frames
    assert all(f["driver_track_id"] == 1 and len(f["faces"]) == 1 for f in doc["frames"])
    track = poses(doc, 1)
    assert len(track) >= 0.9 * frames
    assert_no_roll_flip(track)
    assert doc["summary"]["driver_track_id"] == 1 and doc["summary"]["share_driver_visible"] == 1.0
    assert doc["neutral_pose"]["source"] == "provisional"  # under 10 s of face: the median so far
    assert any("head, not the eyes" in a for a in doc["assumptions"])


def test_yaw_follows_the_visible_head_turn(driver: Deployment, tmp_path: Path) -> None:
    """In the female clip she looks toward the image's left (frames 2-6), then toward its right (10-17)."""
    doc = run(driver, require_shared("media", "head-pose-face-detection-female.gif"), tmp_path)
    yaw = {f["index"]: f["faces"][0]["head_pose"]["yaw_deg"] for f in doc["frames"] if f["faces"][0]["head_pose"]}
    assert max(yaw[i] for i in range(2, 7) if i in yaw) > 20
    assert min(yaw[i] for i in range(10, 18) if i in yaw) < -20
    # turned that far from her neutral pose she is off road, with the hysteresis of 30 / 25 degrees
    assert any(f["attention"] and f["attention"]["off_road"] for f in doc["frames"])


def test_two_people_keep_two_stable_ids(driver: Deployment, tmp_path: Path) -> None:
    doc = run(driver, require_shared("media", "head-pose-face-detection-female-and-male.gif"), tmp_path)
    ids = {face["track_id"] for f in doc["frames"] for face in f["faces"]}
    assert ids == {1, 2}
    both = [f for f in doc["frames"] if len(f["faces"]) == 2]
    assert len(both) >= 0.9 * len(doc["frames"])
    # the ids never swap places: each keeps its side of the frame
    sides = {(face["track_id"], (face["box_xyxy"][0] + face["box_xyxy"][2]) / 2 < doc["video"]["width"] / 2)
             for f in both for face in f["faces"]}
    assert len(sides) == 2
    driver_ids = {f["driver_track_id"] for f in doc["frames"]}
    assert len(driver_ids) == 1 and driver_ids <= ids
    for track_id in ids:
        assert_no_roll_flip(poses(doc, track_id))


def test_a_video_without_a_face_succeeds_with_driver_not_visible(driver: Deployment, tmp_path: Path) -> None:
    clip = make_video(tmp_path / "empty-cabin.mp4", frames=100, fps=25)
    doc = run(driver, clip, tmp_path / "out")
    assert all(f["driver_track_id"] is None and f["faces"] == [] for f in doc["frames"])
    (event,) = doc["events"]
    assert event["type"] == "driver_not_visible"
    assert (event["start_s"], event["end_s"]) == (0.0, pytest.approx(4.0))
    assert doc["summary"]["share_driver_visible"] == 0.0 and doc["neutral_pose"]["source"] == "none"


@pytest.mark.parametrize(
    ("params", "field"),
    [({"face_model": "lstr"}, "face_model"), ({"landmark_model": "yunet"}, "landmark_model"),
     ({"camera": {"focal_px": 500, "hfov_deg": 60}}, "camera"), ({"off_road": {"yaw_deg": 0}}, "off_road.yaw_deg")],
)
def test_wrong_models_and_params_are_refused_at_submit(driver: Deployment, tmp_path: Path, params: dict[str, Any],
                                                        field: str) -> None:
    key = driver.client.upload(make_video(tmp_path / "x.mp4", frames=5))["key"]
    response = httpx.post(f"{driver.base_url}/v1/jobs", json={"pipeline": "driver", "input": {"key": key},
                                                              "params": params})
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "invalid_params" and problem["detail"].startswith(f"{field}: "), problem


def frame_times(path: Path) -> list[Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        return [int(f.pts or 0) * stream.time_base for f in container.decode(stream)]


def test_gif_becomes_h264_with_the_gif_timing(driver: Deployment, tmp_path: Path) -> None:
    gif = require_shared("media", "head-pose-face-detection-female.gif")
    doc = run(driver, gif, tmp_path)
    assert doc["video"]["fps_fraction"] == "25/2"
    source = frame_times(gif)
    assert frame_times(next(tmp_path.glob("*.mp4"))) == [t - source[0] for t in source]
