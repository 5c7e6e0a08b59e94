"""The whole job lifecycle over HTTP against `framequeue up`, with the real dashcam clip."""

from __future__ import annotations

import json
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import httpx
import pytest

from framequeue.errors import IdempotencyConflict
from tests.acceptance.deployment import Deployment
from tests.mediagen import pdf_named_mp4, random_bytes, truncated

pytestmark = pytest.mark.slow


def test_dashcam_clip_is_annotated(deployment: Deployment, dashcam_video: Path, tmp_path: Path) -> None:
    submitted = deployment.submit_file(dashcam_video)
    assert submitted["status"] == "queued"
    assert submitted["output_location"].endswith(f"outputs/{submitted['id']}/")
    record = deployment.wait_done(submitted["id"])
    assert record["status"] == "succeeded", record
    assert record["attempts"] == 1
    assert record["progress"]["frames_done"] == record["progress"]["frames_total"] == 221
    assert record["started_at"] and record["finished_at"] and record["finished_at"] >= record["started_at"]

    video = deployment.client.download(record["id"], "video", tmp_path)
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 960, 540)
        assert stream.average_rate == Fraction(25)
        assert sum(1 for _ in container.decode(stream)) == 221

    detections = json.loads(deployment.client.download(record["id"], "detections", tmp_path).read_text())
    frame100 = next(f for f in detections["frames"] if f["frame"] == 100)
    cars = [d for d in frame100["detections"] if d["class"] == "car"]
    assert len(cars) >= 2, frame100
    assert frame100["time_s"] == pytest.approx(4.0)
    for d in cars:
        x1, y1, x2, y2 = d["xyxy"]
        assert 0 <= x1 < x2 <= 960 and 0 <= y1 < y2 <= 540 and 0 < d["score"] <= 1

    sheet = cv2.imread(str(deployment.client.download(record["id"], "contact_sheet", tmp_path)))
    assert sheet is not None and sheet.shape[0] >= 270 and sheet.shape[1] >= 480


def test_idempotency_key(deployment: Deployment, small_clip: Path) -> None:
    key = deployment.client.upload(small_clip)["key"]
    body = {"pipeline": "detect", "input": {"key": key}, "params": {"sample_fps": 5}}
    first = deployment.client.submit(body, idempotency_key="clip-42")
    again = deployment.client.submit(body, idempotency_key="clip-42")
    assert again["id"] == first["id"]
    with pytest.raises(IdempotencyConflict):
        deployment.client.submit({**body, "params": {"sample_fps": 2}}, idempotency_key="clip-42")
    assert deployment.wait_done(first["id"])["status"] == "succeeded"
    listed = deployment.client.jobs(limit=200)["jobs"]
    assert sum(1 for j in listed if j["id"] == first["id"]) == 1


def test_cancel_queued_and_running(deployment: Deployment, dashcam_video: Path) -> None:
    jobs = [deployment.submit_file(dashcam_video) for _ in range(3)]
    running = [deployment.wait_for(j["id"], lambda r: r["status"] == "running" and r["progress"]["frames_done"] > 0)
               for j in jobs[:2]]
    queued = deployment.client.job(jobs[2]["id"])
    assert queued["status"] == "queued"
    assert deployment.client.cancel(queued["id"])["status"] == "cancelled"
    for r in running:
        asked = time.monotonic()
        deployment.client.cancel(r["id"])
        ended = deployment.wait_done(r["id"], timeout_s=10)
        assert ended["status"] == "cancelled" and ended["error"]["code"] == "cancelled"
        assert time.monotonic() - asked < 6
        assert ended["outputs"] == {}


def test_timeout_fails_the_job(deployment: Deployment, dashcam_video: Path) -> None:
    submitted = deployment.submit_file(dashcam_video, timeout_s=1)
    record = deployment.wait_done(submitted["id"], timeout_s=60)
    assert record["status"] == "failed" and record["error"]["code"] == "timeout"
    assert record["attempts"] == 1


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda d: random_bytes(d / "noise.mp4"), "unsupported_media"),
        (lambda d: pdf_named_mp4(d / "report.mp4"), "unsupported_media"),
        ("truncated", "corrupt_media"),
    ],
    ids=["random-bytes", "pdf-named-mp4", "truncated-mp4"],
)
def test_hostile_input_fails_with_its_code_and_the_next_job_succeeds(
    deployment: Deployment, tmp_path: Path, dashcam_video: Path, small_clip: Path, make: object, code: str
) -> None:
    bad = truncated(dashcam_video, tmp_path / "cut.mp4") if make == "truncated" else make(tmp_path)  # type: ignore[operator]
    failed = deployment.wait_done(deployment.submit_file(bad)["id"], timeout_s=60)
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == code
    assert failed["error"]["message"]
    assert failed["attempts"] == 1
    assert failed["outputs"] == {}
    good = deployment.wait_done(deployment.submit_file(small_clip)["id"], timeout_s=60)
    assert good["status"] == "succeeded"


def test_submit_is_validated(deployment: Deployment, small_clip: Path) -> None:
    http = httpx.Client(base_url=deployment.base_url)
    key = deployment.client.upload(small_clip)["key"]

    def post(body: object, **kw: object) -> httpx.Response:
        return http.post("/v1/jobs", json=body, **kw)  # type: ignore[arg-type]

    cases = [
        (post({"pipeline": "nope", "input": {"key": key}}), 422, "unknown_pipeline"),
        (post({"pipeline": "detect", "input": {"key": key}, "params": {"model": "ghost"}}), 422, "unknown_model"),
        (post({"pipeline": "detect", "input": {"key": key}, "colour": "red"}), 400, "invalid_request"),
        (post({"pipeline": "detect", "input": {"key": "uploads/none/x.mp4"}}), 422, "input_not_found"),
        (post({"pipeline": "detect", "input": {"key": "../../etc/passwd"}}), 422, "invalid_key"),
        (post({"pipeline": "detect", "input": {"key": key}, "params": {"sample_fps": -1}}), 422, "invalid_params"),
        (http.post("/v1/jobs", content=b"pipeline=detect", headers={"content-type": "text/plain"}), 415,
         "unsupported_content_type"),
        (http.post("/v1/jobs", content=b"{" + b" " * (10 * 1024 * 1024) + b"}",
                   headers={"content-type": "application/json"}), 413, "payload_too_large"),
        (http.get("/v1/jobs/0123456789abcdef"), 404, "job_not_found"),
    ]
    for resp, status, code in cases:
        assert resp.status_code == status, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["code"] == code, resp.text
    assert "colour" in cases[2][0].json()["detail"]
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").status_code == 200
    http.close()
