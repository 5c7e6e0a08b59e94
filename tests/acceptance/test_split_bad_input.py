"""Bad input and delivery for split jobs (issue 17), over real `framequeue up` processes with two workers:
a long video with one giant GOP, or keyframes far apart, is never cut mid-GOP and succeeds whole; damaged
packets in one segment's range fail that segment with `corrupt_media`, and its parent with it (siblings
cancelled, one webhook, the workers still serving); a split job behind an async endpoint delivers the same
primary output to its OutputLocation as the unsplit job does."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import s3server
from tests.acceptance.deployment import Deployment
from tests.acceptance.splitclips import damage_packets, frames_of, start_splitting, synthetic_clip
from tests.acceptance.splitgen import looped_clip
from tests.acceptance.test_webhooks_over_http import Receiver
from tests.conftest import require_shared

pytestmark = pytest.mark.slow

#: a 200 s video at 2 fps: longer than split_min_s (120 s), 400 frames only
GIANT_S, GIANT_FPS = 200.0, 2
#: where the async endpoints of the delivery test write
OUT_BUCKET = f"fq-out-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def splitting(tmp_path_factory: pytest.TempPathFactory, yolox_model_dir: Path) -> Iterator[Deployment]:
    dep = start_splitting(tmp_path_factory.mktemp("splitbad"), yolox_model_dir, segment_s=60)
    yield dep
    dep.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def segment_jobs(dep: Deployment, record: dict[str, Any]) -> list[dict[str, Any]]:
    return [dep.client.job(s["id"]) for s in record.get("segments") or []]


@pytest.mark.parametrize(("gop_frames", "segments"), [
    (round(GIANT_S * GIANT_FPS) + 1, None),  # one keyframe, at the start: nowhere to cut, run whole
    (300, 2),  # keyframes at 0 and 150 s only: cut at 150 s, not at 60 or 120 s (mid-GOP)
])
def test_a_giant_gop_is_never_cut_mid_gop(splitting: Deployment, tmp_path: Path, gop_frames: int,
                                          segments: int | None) -> None:
    clip = synthetic_clip(tmp_path / "giant.mp4", seconds=GIANT_S, fps=GIANT_FPS, gop_frames=gop_frames)
    job = splitting.submit_file(clip, {"split": True})
    record = splitting.wait_done(job["id"], timeout_s=300)
    assert record["status"] == "succeeded", (record, splitting.log("up")[-4000:])
    frames = round(GIANT_S * GIANT_FPS)
    doc = frames_of(splitting, job["id"], tmp_path)
    assert [f["frame"] for f in doc["frames"]] == list(range(frames))
    assert doc["video"]["frames"] == frames
    assert record["segments_total"] == segments
    if segments is not None:
        # each segment starts on a keyframe the video has: 0 and 150 s
        parts = segment_jobs(splitting, record)
        assert [s["params"]["segment"]["start_s"] for s in parts] == [0.0, 150.0]
        assert [s["params"]["segment"]["frames"] for s in parts] == [300, 100]
        # the second starts cold at its keyframe: no lead-in re-running the first's whole 150 s GOP
        assert [s["params"]["segment"]["lead_in_frames"] for s in parts] == [0, 0]
        # and gives what the whole run gives, frame by frame
        whole = splitting.submit_file(clip, {"split": False})
        assert splitting.wait_done(whole["id"], timeout_s=300)["status"] == "succeeded"
        assert frames_of(splitting, whole["id"], tmp_path)["frames"] == doc["frames"]
        assert all(s["status"] == "succeeded" for s in parts)
    else:
        assert not any(a["outcome"] == "split" for a in record["attempt_history"])


def test_a_codec_mp4_cannot_carry_runs_whole(splitting: Deployment, tmp_path: Path) -> None:
    """VP8 (WebM) cannot be remuxed into MP4 pieces: the split gives up before any segment exists and the
    job runs whole, to the same frames."""
    clip = synthetic_clip(tmp_path / "long.webm", seconds=GIANT_S, fps=GIANT_FPS, gop_frames=20, vp8=True)
    job = splitting.submit_file(clip, {"split": True})
    record = splitting.wait_done(job["id"], timeout_s=300)
    assert record["status"] == "succeeded", (record, splitting.log("up")[-4000:])
    assert record["segments_total"] is None
    assert not any(a["outcome"] == "split" for a in record["attempt_history"])
    assert len(record["attempt_history"]) == 1  # the claim that looked at splitting ran it whole
    frames = round(GIANT_S * GIANT_FPS)
    assert [f["frame"] for f in frames_of(splitting, job["id"], tmp_path)["frames"]] == list(range(frames))


def test_a_corrupt_segment_fails_its_attempts_and_the_parent(splitting: Deployment, tmp_path: Path,
                                                             receiver: Receiver) -> None:
    # 60 s at 5 fps, a keyframe every 2 s, segments of 10 s (each decoded from a keyframe ~1 s before its
    # start): packets in 11..17 s are damaged, inside segment 1 and in no other segment's lead-in
    clip = synthetic_clip(tmp_path / "damaged.mp4", seconds=60, fps=5, gop_frames=10)
    assert damage_packets(clip, 11.0, 17.0) > 20
    job = splitting.submit_file(clip, {"split": True, "segment_s": 10}, webhook={"url": receiver.url})
    record = splitting.wait_done(job["id"], timeout_s=180)
    assert record["status"] == "failed", record
    assert record["error"]["code"] == "segment_failed"
    assert "segment 1 " in record["error"]["message"] and "corrupt_media" in record["error"]["message"]
    assert record["segments_total"] == 6

    def all_ended(r: dict[str, Any]) -> bool:
        return all(s["status"] in {"succeeded", "failed", "cancelled"} for s in r["segments"])

    record = splitting.wait_for(job["id"], all_ended, timeout_s=60)
    by_index = {s["index"]: s for s in record["segments"]}
    bad = splitting.client.job(by_index[1]["id"])
    assert bad["status"] == "failed" and bad["error"]["code"] == "corrupt_media"
    assert bad["attempt_history"] and all(a["error"]["code"] == "corrupt_media" for a in bad["attempt_history"])
    siblings = [s for i, s in by_index.items() if i != 1]
    # none failed; those not done before the failure were cancelled with their parent
    assert all(s["status"] in {"succeeded", "cancelled"} for s in siblings), siblings
    assert any(s["status"] == "cancelled" for s in siblings)
    # no segment input is left behind
    deadline = time.monotonic() + 20
    while list((splitting.home / "objects" / "segments" / job["id"]).rglob("*.mp4")):
        assert time.monotonic() < deadline, "segment inputs left after the parent failed"
        time.sleep(0.5)

    receiver.wait(1)
    time.sleep(2)  # a second one would have come by now
    assert [json.loads(body)["type"] for _, body in receiver.received] == ["job.failed"]
    assert json.loads(receiver.received[0][1])["data"]["id"] == job["id"]

    # the workers are still there for the next job
    small = synthetic_clip(tmp_path / "small.mp4", seconds=4, fps=5, gop_frames=10)
    after = splitting.submit_file(small)
    assert splitting.wait_done(after["id"], timeout_s=120)["status"] == "succeeded"


def invoke(dep: Deployment, endpoint: str, key: str, name: str) -> tuple[str, str]:
    """An async invocation of `endpoint` on the stored `key`: (its job's id, its OutputLocation)."""
    reply = httpx.post(f"{dep.base_url}/endpoints/{endpoint}/async-invocations", timeout=30, headers={
        "X-Amzn-SageMaker-InputLocation": key, "X-Amzn-SageMaker-Inference-Id": name,
    })
    assert reply.status_code == 202, reply.text
    return reply.headers["location"].rsplit("/", 1)[-1], reply.headers["x-amzn-sagemaker-outputlocation"]


@pytest.fixture(scope="module")
def delivering(tmp_path_factory: pytest.TempPathFactory, yolox_model_dir: Path) -> Iterator[tuple[Deployment, Any]]:
    """`framequeue up` with two workers on an S3 store (async endpoints deliver to S3 locations), and a boto3
    client of that S3 service, with the bucket OUT_BUCKET made."""
    s3server.require_s3()
    boto3 = pytest.importorskip("boto3")
    client = boto3.client("s3", endpoint_url=s3server.endpoint(), region_name=s3server.REGION,
                          aws_access_key_id=s3server.ACCESS_KEY, aws_secret_access_key=s3server.SECRET_KEY)
    client.create_bucket(Bucket=OUT_BUCKET)
    dep = start_splitting(tmp_path_factory.mktemp("splitdeliver"), yolox_model_dir, segment_s=60,
                          storage_url=s3server.store_url())
    yield dep, client
    dep.stop()


def test_a_split_job_delivers_the_primary_output_an_unsplit_one_does(delivering: tuple[Deployment, Any],
                                                                      tmp_path: Path) -> None:
    dep, s3 = delivering
    clip = looped_clip(require_shared("media", "car-detection.mp4"), tmp_path / "long.mp4", seconds=40, fps=5)
    for name, split in (("whole", False), ("split", True)):
        dep.client.create_endpoint({"name": f"detect-{name}", "pipeline": "detect",
                                    "params": {"split": split, "segment_s": 20},
                                    "output_path": f"s3://{OUT_BUCKET}/delivered/{name}"})
    key = dep.client.upload(clip)["key"]
    whole_id, whole_uri = invoke(dep, "detect-whole", key, "whole-1")
    split_id, split_uri = invoke(dep, "detect-split", key, "split-1")
    split_record = dep.wait_done(split_id, timeout_s=300)
    whole_record = dep.wait_done(whole_id, timeout_s=300)
    assert split_record["status"] == whole_record["status"] == "succeeded", (split_record, whole_record)
    assert split_record["segments_total"] == 2 and whole_record["segments_total"] is None

    def delivered(uri: str) -> Any:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    whole_doc, split_doc = delivered(whole_uri), delivered(split_uri)
    # the unsplit job delivers its per-frame JSON (detect's primary output); the split one the same output
    assert whole_doc == frames_of(dep, whole_id, tmp_path)
    assert split_doc == frames_of(dep, split_id, tmp_path)
    assert len(split_doc["frames"]) == len(whole_doc["frames"]) == 200
    assert split_doc["frames"] == whole_doc["frames"]
    assert sum(len(f["detections"]) for f in split_doc["frames"]) > 0
    assert split_doc.keys() == whole_doc.keys()
