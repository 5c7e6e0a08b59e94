"""On an s3:// object store, each output's `url` in the job record is a presigned GET of the object itself:
fetched without credentials, with the output's content type, and taking Range requests (a video player
seeks straight from S3). Against `framequeue api` and a worker on a real S3-protocol server (moto)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import s3server
from tests.acceptance.deployment import Deployment
from tests.conftest import require_shared

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    s3server.require_s3()
    url = s3server.endpoint()
    storage = (f"s3://{s3server.ACCESS_KEY}:{s3server.SECRET_KEY}@{s3server.BUCKET}/fq-{uuid.uuid4().hex[:8]}"
               f"?endpoint={url}&region={s3server.REGION}")
    dep = Deployment(tmp_path_factory.mktemp("s3-outputs"), storage_url=storage, lease_s=10, heartbeat_s=2,
                     reap_interval_s=1, drain_s=2)
    dep.register_yolox(require_shared("models", "yolox_nano"))
    dep.start("api", "api")
    dep.start("w1", "worker")
    dep.wait_ready()
    yield dep
    dep.stop()


def test_output_urls_are_presigned_gets_that_take_ranges(s3_deployment: Deployment, tmp_path: Path) -> None:
    still = require_shared("media", "stills", "whiteCarLaneSwitch.jpg")
    record = s3_deployment.wait_done(s3_deployment.submit_file(still)["id"])
    assert record["status"] == "succeeded", record
    urls = record["output_urls"]
    assert set(urls) == set(record["outputs"]) == {"video", "detections", "contact_sheet", "image"}
    for name, url in urls.items():
        assert url.startswith(s3server.endpoint()) and "X-Amz-Signature=" in url and "X-Amz-Expires=3600" in url
        assert s3server.SECRET_KEY not in url
        via_api = s3_deployment.client.download(record["id"], name, tmp_path / name).read_bytes()
        direct = httpx.get(url, timeout=30)  # no credentials: the signature is the grant
        assert direct.status_code == 200 and direct.content == via_api
    video = httpx.get(urls["video"], headers={"Range": "bytes=-32"}, timeout=30)
    assert (video.status_code, video.headers["content-type"]) == (206, "video/mp4")
    assert video.content == (tmp_path / "video" / "annotated.mp4").read_bytes()[-32:]
    assert httpx.get(urls["image"], timeout=30).headers["content-type"] == "image/png"
