"""A long video split across two workers (issue 17): real `framequeue` processes over HTTP. The same
~3-minute video (2 s GOP) run split into 60 s segments and run whole gives the same frame count and the same
detections on every frame; the split job has one output set (one MP4 that decodes with continuous
timestamps), one webhook, and its segments show in its record, not in the listing."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.deployment import Deployment
from tests.acceptance.splitclips import frames_of, start_splitting, video_pts
from tests.acceptance.splitgen import looped_clip
from tests.acceptance.test_webhooks_over_http import Receiver
from tests.conftest import require_shared

pytestmark = pytest.mark.slow

#: the issue's proof: the dashcam clip looped to 5 minutes, 60 s segments on 2 workers vs unsplit
SECONDS = 300.0
SEGMENT_S = 60.0


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = require_shared("media", "car-detection.mp4")
    return looped_clip(src, tmp_path_factory.mktemp("media") / "long.mp4", seconds=SECONDS)


@pytest.fixture(scope="module")
def splitting(tmp_path_factory: pytest.TempPathFactory, yolox_model_dir: Path) -> Iterator[Deployment]:
    dep = start_splitting(tmp_path_factory.mktemp("split"), yolox_model_dir, segment_s=SEGMENT_S)
    yield dep
    dep.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_a_split_run_equals_the_whole_run(splitting: Deployment, long_clip: Path, receiver: Receiver,
                                          tmp_path: Path) -> None:
    whole = splitting.submit_file(long_clip, {"split": False})
    split = splitting.submit_file(long_clip, webhook={"url": receiver.url})
    split_record = splitting.wait_done(split["id"], timeout_s=600)
    whole_record = splitting.wait_done(whole["id"], timeout_s=600)
    assert whole_record["status"] == "succeeded", whole_record
    assert split_record["status"] == "succeeded", (split_record, splitting.log("up")[-4000:])

    # the parent: its segments, all succeeded, shown in its record and not in the listing
    n = round(SECONDS / SEGMENT_S)
    assert split_record["segments_total"] == n and split_record["segments_done"] == n
    assert [s["index"] for s in split_record["segments"]] == list(range(n))
    assert all(s["status"] == "succeeded" for s in split_record["segments"])
    assert any(a["outcome"] == "split" for a in split_record["attempt_history"])
    assert whole_record["segments_total"] is None
    listed = {j["id"] for j in splitting.client.jobs(limit=100)["jobs"]}
    assert {whole["id"], split["id"]} <= listed
    assert not listed & {s["id"] for s in split_record["segments"]}

    # the same frames, the same detections on every one
    a, b = frames_of(splitting, whole["id"], tmp_path), frames_of(splitting, split["id"], tmp_path)
    assert len(a["frames"]) == len(b["frames"]) == round(SECONDS * 10)
    assert [f["frame"] for f in b["frames"]] == list(range(len(b["frames"])))
    assert a["frames"] == b["frames"]
    assert sum(len(f["detections"]) for f in b["frames"]) > 0
    assert b["video"]["frames"] == a["video"]["frames"]
    assert split_record["detections_total"] == whole_record["detections_total"]
    assert set(split_record["outputs"]) == set(whole_record["outputs"])

    # one MP4 with continuous timestamps: one frame period apart from first to last
    pts, time_base = video_pts(splitting, split["id"], tmp_path)
    assert len(pts) == round(SECONDS * 10)
    steps = {round((q - p) * time_base, 6) for p, q in itertools.pairwise(pts)}
    assert steps == {0.1}, sorted(steps)[:5]

    # one webhook, the parent's; none for a segment
    receiver.wait(1)
    time.sleep(2)  # a second one would have come by now
    assert len(receiver.received) == 1
    payload = json.loads(receiver.received[0][1])
    assert payload["type"] == "job.succeeded" and payload["data"]["id"] == split["id"]


def test_cancel_of_a_split_job_cascades_to_its_segments(splitting: Deployment, long_clip: Path,
                                                         receiver: Receiver) -> None:
    job = splitting.submit_file(long_clip, {"split": True, "segment_s": 20}, webhook={"url": receiver.url})

    def a_segment_runs(r: dict[str, Any]) -> bool:
        return any(s["status"] == "running" and s["frames_done"] > 0 for s in r.get("segments") or [])

    splitting.wait_for(job["id"], a_segment_runs)
    answer = splitting.client.cancel(job["id"])
    assert answer["status"] == "cancelled"

    def all_ended(r: dict[str, Any]) -> bool:
        return all(s["status"] in {"cancelled", "succeeded"} for s in r["segments"])

    record = splitting.wait_for(job["id"], all_ended, timeout_s=60)
    assert record["status"] == "cancelled" and record["error"]["code"] == "cancelled"
    assert any(s["status"] == "cancelled" for s in record["segments"])
    assert not list((splitting.home / "objects" / "segments" / job["id"]).rglob("*.mp4"))
    receiver.wait(1)
    time.sleep(2)
    assert [json.loads(body)["type"] for _, body in receiver.received] == ["job.cancelled"]
