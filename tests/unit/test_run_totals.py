"""What a successful run amounted to, as the worker commits it and the job record shows it: seconds of video
(frames / average frame rate; none for a still), the detect pipeline's boxes, the events of a pipeline that
has them. The Models page divides the counts by the minutes of video."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from framequeue.jobs import Job, JobStatus, RunTotals, job_record
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.base import RunContext, RunResult
from framequeue.pipelines.detect import DetectPipeline
from framequeue.worker.attempt import run_totals
from tests.unit.synthetic import make_clip, write_tiny_yolox
from tests.unit.test_still_input import synthetic_still

pytest.importorskip("onnx", reason="the tiny test model is built with the onnx package")

NTSC = Fraction(30000, 1001)


@pytest.fixture
def repo(tmp_path: Path) -> ModelRepository:
    repo = ModelRepository(tmp_path / "models")
    repo.add("tiny", *write_tiny_yolox(tmp_path / "src")[:1], "yolox", tmp_path / "src" / "classes.txt")
    return repo


def _detect(media: Path, out: Path, repo: ModelRepository) -> RunResult:
    pipeline = DetectPipeline()
    params = pipeline.validate({"model": "tiny", "sample_fps": 5, "score_threshold": 0.3}, repo)
    ctx = RunContext(input_path=media, output_dir=out, params=params, models=repo, threads=2,
                     on_progress=lambda p: None, stop=threading.Event())
    return pipeline.run(ctx)


def test_a_detect_run_counts_its_video_seconds_and_boxes(tmp_path: Path, repo: ModelRepository) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=40, size_wh=(160, 120), rate=NTSC)
    result = _detect(clip, tmp_path / "out", repo)
    boxes = sum(len(f["detections"]) for f in json.loads((tmp_path / "out" / "detections.json").read_text())["frames"])
    assert boxes > 0, "the tiny model at threshold 0.3 finds boxes"
    totals = run_totals(result)
    # 40 frames at 29.97 fps: 1.3347 s of video; detect has no events
    assert totals == RunTotals(video_s=pytest.approx(40 * 1001 / 30000), events_total=None, detections_total=boxes)


def test_a_still_has_no_video_seconds(tmp_path: Path, repo: ModelRepository) -> None:
    result = _detect(synthetic_still(tmp_path / "in.png"), tmp_path / "out", repo)
    totals = run_totals(result)
    assert totals.video_s is None and totals.events_total is None
    boxes = sum(len(f["detections"]) for f in json.loads((tmp_path / "out" / "detections.json").read_text())["frames"])
    assert totals.detections_total == boxes


def test_events_are_counted_all_of_them() -> None:
    events = [{"type": "following_too_close", "start_s": float(i), "end_s": i + 0.5} for i in range(3)]
    result = RunResult({"video": "v.mp4"}, frames_total=75, frames_inferred=15, events=events, video_s=3.0,
                       events_total=3)
    assert run_totals(result) == RunTotals(3.0, 3, None)
    assert run_totals(RunResult({"result": "r.json"}, frames_total=1, frames_inferred=0)) == RunTotals()


def test_the_record_shows_the_totals() -> None:
    job = Job(id="j", pipeline="road", pipeline_version="1", input_key="uploads/j/in.mp4", params={},
              status=JobStatus.SUCCEEDED, created_at_s=100.0, updated_at_s=100.0, expires_at_s=160.0, timeout_s=30,
              max_attempts=3)
    record = job_record(job, output_location="file:///o/", failure_location="file:///f")
    assert (record["video_s"], record["events_total"], record["detections_total"]) == (None, None, None)
    record = job_record(replace(job, totals=RunTotals(6.0, 2, None)), output_location="o", failure_location="f")
    assert (record["video_s"], record["events_total"], record["detections_total"]) == (6.0, 2, None)
