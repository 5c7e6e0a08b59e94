"""/metrics during a real run: the API's queue view before any worker runs, then a worker's counters after
it ran real detect jobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.deployment import Deployment, free_port
from tests.mediagen import make_video


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = httpx.get(url, timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


@pytest.fixture
def api_only(tmp_path: Path, yolox_model_dir: Path) -> Iterator[Deployment]:
    dep = Deployment(tmp_path, lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2)
    dep.register_yolox(yolox_model_dir)
    dep.start("api", "api")
    dep.wait_ready()
    yield dep
    dep.stop()


def test_metrics_follow_a_backlog_and_the_worker_that_drains_it(api_only: Deployment, tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", frames=12)
    jobs = [api_only.submit_file(clip) for _ in range(3)]
    queue = _scrape(f"{api_only.base_url}/metrics")
    assert queue[("framequeue_queue_up", ())] == 1
    assert queue[("framequeue_backlog_jobs", ())] == 3
    assert queue[("framequeue_backlog_without_capacity_jobs", ())] == 3
    assert queue[("framequeue_oldest_waiting_age_seconds", ())] >= 0

    port = free_port()
    api_only.start("w1", "worker", metrics_port=port)
    for job in jobs:
        assert api_only.wait_done(job["id"], timeout_s=90)["status"] == "succeeded"
    worker = _scrape(f"http://127.0.0.1:{port}/metrics")
    assert worker[("framequeue_worker_up", ())] == 1
    assert worker[("framequeue_worker_busy", ())] == 0
    assert worker[("framequeue_jobs_total", (("outcome", "succeeded"),))] == 3
    assert worker[("framequeue_frames_total", ())] == 36
    assert worker[("framequeue_time_in_backlog_seconds_count", ())] == 3
    assert worker[("framequeue_processing_seconds_count", ())] == 3
    assert worker[("framequeue_model_latency_seconds_count", ())] == 3
    for stage in ("fetch", "decode", "infer", "encode", "upload"):
        assert worker[("framequeue_stage_seconds_total", (("stage", stage),))] > 0, stage
    after = _scrape(f"{api_only.base_url}/metrics")
    assert after[("framequeue_backlog_jobs", ())] == 0 and after[("framequeue_outstanding_jobs", ())] == 0
