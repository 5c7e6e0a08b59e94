"""The pure rules of a split long video: when a job is split, a parent's record (summed progress, its
segments), a segment job's shape, and the join of the segments' per-frame JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from framequeue.config import Settings
from framequeue.errors import InvalidParams
from framequeue.jobs import Job, JobError, JobProgress, JobStatus, Priority, segment_job, split_view
from framequeue.pipelines.outputs import JsonStream
from framequeue.pipelines.params import check_unknown
from framequeue.worker.split import may_split, should_split
from framequeue.worker.stitch import join_frames

PARENT = Job(
    id="p", pipeline="detect", pipeline_version="1", input_key="uploads/default/a.mp4", params={"sample_fps": 5},
    status=JobStatus.RUNNING, created_at_s=100.0, updated_at_s=100.0, expires_at_s=400.0, timeout_s=900.0,
    max_attempts=3, webhook_url="https://example.test/h", tenant="t1", priority=Priority.HIGH,
)


def test_a_job_is_split_when_asked_or_long_with_several_workers() -> None:
    one, two = Settings(split_workers=1), Settings(split_workers=2, split_min_s=120)
    assert not may_split(PARENT, one)
    assert may_split(PARENT, two)
    assert may_split(replace(PARENT, params={"split": True}), one)
    assert not may_split(replace(PARENT, params={"split": False}), two)
    assert not may_split(replace(PARENT, pipeline="driver"), two)
    assert not may_split(replace(PARENT, parent_id="x", segment_index=0), two)
    assert not may_split(replace(PARENT, segments_total=3), two)
    assert should_split(PARENT, 121.0, two) and not should_split(PARENT, 120.0, two)
    assert should_split(replace(PARENT, params={"split": True}), 10.0, two)


def test_split_params_are_checked_beside_the_pipelines_own() -> None:
    check_unknown({"split": True, "segment_s": 30, "a": 1}, {"a": None})
    with pytest.raises(InvalidParams, match="split"):
        check_unknown({"split": "yes"}, {})
    with pytest.raises(InvalidParams, match="segment_s"):
        check_unknown({"segment_s": 0.5}, {})
    with pytest.raises(InvalidParams, match="segment"):
        check_unknown({"segment": {"index": 0}}, {})


def test_a_segment_job_is_the_parents_work_without_its_webhook() -> None:
    seg = segment_job(PARENT, 2, "s2", "segments/p/2.mp4", {"index": 2, "start_s": 120.0}, 200.0)
    assert (seg.parent_id, seg.segment_index, seg.status) == ("p", 2, JobStatus.QUEUED)
    assert seg.params == {"sample_fps": 5, "segment": {"index": 2, "start_s": 120.0}}
    assert seg.webhook_url is None and seg.tenant == "t1" and seg.priority is Priority.HIGH
    assert seg.expires_at_s == 200.0 + PARENT.ttl_s and seg.max_attempts == 3


def test_a_parked_parent_shows_its_segments_and_their_summed_progress() -> None:
    parked = replace(PARENT, segments_total=3, segments_done=1, lease_deadline_s=None)
    segs = [
        replace(segment_job(PARENT, 0, "s0", "k0", {}, 0.0), status=JobStatus.SUCCEEDED,
                progress=JobProgress(600, 600, 0.0)),
        replace(segment_job(PARENT, 1, "s1", "k1", {}, 0.0), status=JobStatus.RUNNING,
                progress=JobProgress(150, 600, 30.0)),
        replace(segment_job(PARENT, 2, "s2", "k2", {}, 0.0), attempts=1, error=JobError("worker_crashed", "x"),
                progress=JobProgress(0, 300, 0.0)),
    ]
    view = split_view(parked, segs)
    assert view["progress"]["frames_done"] == 750 and view["progress"]["frames_total"] == 1500
    assert view["progress"]["percent"] == 50.0 and view["progress"]["eta_s"] == 25.0
    assert [(s["index"], s["status"]) for s in view["segments"]] == [(0, "succeeded"), (1, "running"), (2, "queued")]
    assert view["segments"][2]["error"] == {"code": "worker_crashed", "message": "x"}
    assert split_view(PARENT, []) == {}


def test_the_per_frame_json_joins_in_order_under_the_first_head(tmp_path: Path) -> None:
    parts = []
    for k in range(2):
        path = tmp_path / f"{k}.json"
        stream = JsonStream(path, {"pipeline": "detect", "model": {"name": "m"}})
        for i in range(3):
            stream.write({"frame": 3 * k + i, "time_s": (3 * k + i) / 10})
        stream.finish({"video": {"fps": 10.0, "frames": 3, "duration_s": 0.3, "width": 8}})
        parts.append(path)
    join_frames(parts, tmp_path / "all.json", 6)
    doc = json.loads((tmp_path / "all.json").read_text())
    assert doc["pipeline"] == "detect" and doc["model"] == {"name": "m"}
    assert [f["frame"] for f in doc["frames"]] == list(range(6))
    assert doc["video"] == {"fps": 10.0, "frames": 6, "duration_s": 0.6, "width": 8}
