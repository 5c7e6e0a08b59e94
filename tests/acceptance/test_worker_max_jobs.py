"""`framequeue worker --max-jobs N` (a Kubernetes Job per video) exits after N jobs, leaving the rest queued."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.deployment import Deployment


@pytest.fixture
def api_only(tmp_path: Path) -> Iterator[Deployment]:
    dep = Deployment(tmp_path, lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2)
    dep.start("api", "api")
    dep.wait_ready()
    yield dep
    dep.stop()


def test_a_worker_with_max_jobs_exits_after_that_many(api_only: Deployment, tmp_path: Path) -> None:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"x")
    key = api_only.client.upload(payload)["key"]
    ids = [api_only.client.submit({"pipeline": "noop", "input": {"key": key}})["id"] for _ in range(3)]
    worker = api_only.start("w1", "worker", "--max-jobs", "2")
    assert worker.wait(timeout=60) == 0
    statuses = sorted(api_only.client.job(i)["status"] for i in ids)
    assert statuses == ["queued", "succeeded", "succeeded"]
    assert "its --max-jobs; exiting" in api_only.log("w1")
