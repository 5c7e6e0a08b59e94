"""Outputs people can watch, against `framequeue up`: HTTP Range per RFC 9110 (206, suffix, 416, If-Range),
content types, each output's `url` in the record, and still images (JPEG, PNG) as one-frame inputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from tests.acceptance.deployment import Deployment
from tests.conftest import require_shared
from tests.mediagen import truncated

pytestmark = pytest.mark.slow

CONTENT_TYPES = {"video": "video/mp4", "detections": "application/json", "contact_sheet": "image/png",
                 "image": "image/png"}


@pytest.fixture(scope="module")
def still() -> Path:
    return require_shared("media", "stills", "solidWhiteRight.jpg")


@pytest.fixture(scope="module")
def still_job(deployment: Deployment, still: Path) -> dict[str, Any]:
    record = deployment.wait_done(deployment.submit_file(still)["id"])
    assert record["status"] == "succeeded", record
    return record


@pytest.fixture(scope="module")
def http(deployment: Deployment) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=deployment.base_url, timeout=30) as client:
        yield client


def test_a_jpeg_through_detect_is_one_annotated_frame(
    deployment: Deployment, still_job: dict[str, Any], http: httpx.Client
) -> None:
    assert still_job["progress"]["frames_done"] == still_job["progress"]["frames_total"] == 1
    assert set(still_job["outputs"]) == set(CONTENT_TYPES)
    detections = http.get(still_job["output_urls"]["detections"]).json()
    (frame,) = detections["frames"]
    assert frame["frame"] == 0 and any(d["class"] == "car" for d in frame["detections"]), frame
    png = http.get(still_job["output_urls"]["image"]).content
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (540, 960, 3)


def test_every_output_url_is_the_api_route_with_its_content_type(
    still_job: dict[str, Any], http: httpx.Client
) -> None:
    job_id = still_job["id"]
    assert still_job["output_urls"] == {name: f"/v1/jobs/{job_id}/outputs/{name}" for name in still_job["outputs"]}
    for name, url in still_job["output_urls"].items():
        resp = http.get(url)
        assert resp.status_code == 200
        assert resp.headers["content-type"].split(";")[0] == CONTENT_TYPES[name]
        assert resp.headers["accept-ranges"] == "bytes"
        assert int(resp.headers["content-length"]) == len(resp.content) > 0
        assert resp.headers["content-disposition"].startswith("inline; filename=")


def test_byte_ranges(still_job: dict[str, Any], http: httpx.Client) -> None:
    url = still_job["output_urls"]["video"]
    whole = http.get(url).content
    size = len(whole)
    for header, (start, end) in {
        "bytes=0-99": (0, 100),
        "bytes=100-": (100, size),
        "bytes=-64": (size - 64, size),
        f"bytes=10-{size + 1000}": (10, size),
    }.items():
        resp = http.get(url, headers={"Range": header})
        assert resp.status_code == 206, header
        assert resp.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
        assert resp.headers["content-type"] == "video/mp4"
        assert int(resp.headers["content-length"]) == end - start
        assert resp.content == whole[start:end]
    for header in (f"bytes={size}-", "bytes=50-10", "bytes=-0"):
        resp = http.get(url, headers={"Range": header})
        assert resp.status_code == 416, header
        assert resp.headers["content-range"] == f"bytes */{size}"
        assert resp.json()["code"] == "range_not_satisfiable"
    several = http.get(url, headers={"Range": "bytes=0-9,20-29"})  # documented: the whole object
    assert (several.status_code, several.content) == (200, whole)


def test_if_range_and_if_none_match_follow_the_etag(still_job: dict[str, Any], http: httpx.Client) -> None:
    url = still_job["output_urls"]["detections"]
    etag = http.get(url).headers["etag"]
    same = http.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert (same.status_code, len(same.content)) == (206, 10)
    other = http.get(url, headers={"Range": "bytes=0-9", "If-Range": '"another"'})
    assert other.status_code == 200 and json.loads(other.content)["frames"]
    cached = http.get(url, headers={"If-None-Match": f'"x", {etag}'})
    assert (cached.status_code, cached.content, cached.headers["etag"]) == (304, b"", etag)
    assert http.get(url, headers={"If-None-Match": '"x"'}).status_code == 200


def test_a_png_and_a_truncated_jpeg(deployment: Deployment, still: Path, tmp_path: Path) -> None:
    png = tmp_path / "still.png"
    assert cv2.imwrite(str(png), cv2.imread(str(still)))
    broken = truncated(still, tmp_path / "broken.jpg")
    failed = deployment.wait_done(deployment.submit_file(broken)["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "corrupt_media", failed
    assert failed["attempts"] == 1 and failed["output_urls"] == {}
    # the workers are still there for the next job
    record = deployment.wait_done(deployment.submit_file(png)["id"])
    assert record["status"] == "succeeded" and record["progress"]["frames_total"] == 1, record
