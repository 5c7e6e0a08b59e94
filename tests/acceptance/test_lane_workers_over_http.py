"""Lanes in operation, end to end: the API's /metrics counts the job store's backlog per lane and tenant, and
`framequeue worker --lanes high` runs the high jobs while the low ones wait for a worker of their own lanes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.deployment import Deployment
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


def test_a_high_lane_worker_leaves_the_low_jobs_to_the_bulk_group(api_only: Deployment, tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", frames=6)
    high = [api_only.submit_file(clip, priority="high") for _ in range(2)]
    low = [api_only.submit_file(clip, priority="low") for _ in range(2)]
    lanes = _scrape(f"{api_only.base_url}/metrics")
    assert lanes[("framequeue_lanes_up", ())] == 1
    assert lanes[("framequeue_outstanding_by_priority_jobs", (("priority", "high"),))] == 2
    assert lanes[("framequeue_outstanding_by_priority_jobs", (("priority", "normal"),))] == 0
    assert lanes[("framequeue_backlog_by_tenant_jobs", (("priority", "low"), ("tenant", "default")))] == 2

    api_only.start("urgent", "worker", "--lanes", "high")
    for job in high:
        assert api_only.wait_done(job["id"], timeout_s=90)["status"] == "succeeded"
    time.sleep(2)  # the high-lane worker is idle now, polling; it must not take a low job
    assert [api_only.client.job(j["id"])["status"] for j in low] == ["queued", "queued"]
    after = _scrape(f"{api_only.base_url}/metrics")
    assert after[("framequeue_outstanding_by_priority_jobs", (("priority", "high"),))] == 0
    assert after[("framequeue_outstanding_by_priority_jobs", (("priority", "low"),))] == 2

    api_only.start("bulk", "worker", lanes="normal,low")  # FQ_LANES, as the chart's worker groups set it
    for job in low:
        assert api_only.wait_done(job["id"], timeout_s=90)["status"] == "succeeded"
