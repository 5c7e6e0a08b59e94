"""`framequeue up` with two workers and FQ_METRICS_PORT: both workers start (the port is the pool's, not each
worker's), the API's /metrics holds the queue and every worker's metrics, the port holds the workers', and a
worker killed -9 leaves both answering, its counts kept and its gauges dropped once the pool replaced it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.deployment import Deployment, free_port
from tests.acceptance.test_up_shutdown import _alive, _children
from tests.mediagen import make_video

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
SUCCEEDED = ("framequeue_jobs_total", (("outcome", "succeeded"),))
WORKER_UP = ("framequeue_worker_up", ())


def _scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def _eventually(check: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _workers(up_pid: int) -> set[int]:
    return {pid for pid in _children(up_pid)
            if _alive(pid) and b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")}


@pytest.fixture
def up(tmp_path: Path, yolox_model_dir: Path) -> Iterator[Deployment]:
    dep = Deployment(tmp_path, lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2, metrics_port=free_port())
    dep.register_yolox(yolox_model_dir)
    dep.start("up", "up", "--workers", "2")
    dep.wait_ready()
    yield dep
    dep.stop()


def test_up_serves_the_api_and_all_its_workers_metrics_and_survives_a_killed_worker(
    up: Deployment, tmp_path: Path
) -> None:
    api_url = f"{up.base_url}/metrics"
    port_url = f"http://127.0.0.1:{up.env['FQ_METRICS_PORT']}/metrics"
    up_pid = up.procs["up"].pid
    _eventually(lambda: _scrape(api_url).get(WORKER_UP) == 2, "both workers in /metrics", 120)
    assert len(_workers(up_pid)) == 2
    assert "address already in use" not in up.log("up").lower()

    clip = make_video(tmp_path / "clip.mp4", frames=12)
    for job in [up.submit_file(clip) for _ in range(3)]:
        assert up.wait_done(job["id"], timeout_s=120)["status"] == "succeeded"

    api = _scrape(api_url)
    assert api[("framequeue_queue_up", ())] == 1
    assert api[("framequeue_outstanding_jobs", ())] == 0
    assert api[WORKER_UP] == 2
    assert api[("framequeue_worker_busy", ())] == 0
    assert api[SUCCEEDED] == 3
    assert api[("framequeue_frames_total", ())] == 36
    assert api[("framequeue_processing_seconds_count", ())] == 3
    assert api[("framequeue_model_latency_seconds_count", ())] == 3
    assert api[("framequeue_stage_seconds_total", (("stage", "infer"),))] > 0

    port = _scrape(port_url)
    assert port[WORKER_UP] == 2 and port[SUCCEEDED] == 3
    assert ("framequeue_queue_up", ()) not in port  # the queue is the API's to export, once

    killed = min(_workers(up_pid))
    os.kill(killed, signal.SIGKILL)
    _eventually(lambda: not _alive(killed), "the killed worker to be gone", 15)
    assert _scrape(api_url)[SUCCEEDED] == 3 and _scrape(port_url)[SUCCEEDED] == 3
    _eventually(lambda: len(_workers(up_pid) - {killed}) == 2, "the pool to replace the killed worker")
    assert not list((up.home / "metrics").glob(f"gauge_*_{killed}.db"))  # its gauges no longer count
    _eventually(lambda: _scrape(api_url).get(WORKER_UP) == 2, "the replacement in /metrics")

    job = up.submit_file(clip)
    assert up.wait_done(job["id"], timeout_s=120)["status"] == "succeeded"
    assert _scrape(api_url)[SUCCEEDED] == 4  # the killed worker's counts stay in the sum
    assert _scrape(port_url)[WORKER_UP] == 2
