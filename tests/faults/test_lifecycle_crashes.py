"""A process dies at each point of a job's lifecycle; after a restart every job ends in exactly one
terminal state, with one set of outputs, within the lease plus a reaper period."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from framequeue.errors import ServiceUnavailable
from tests.acceptance.deployment import Deployment
from tests.faults.conftest import LEASE_S
from tests.mediagen import make_video

pytestmark = pytest.mark.slow




def attempt_dirs(dep: Deployment, job_id: str) -> list[str]:
    root = dep.home / "objects" / "outputs" / job_id
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


@pytest.mark.parametrize(
    ("point", "attempts"),
    [("after_claim", 2), ("after_upload", 2), ("after_commit", 1), ("before_ack", 1)],
)
def test_worker_dies_at_a_lifecycle_point(split: Deployment, tmp_path: Path, point: str, attempts: int) -> None:
    crashing = split.start("w1", "worker", crash_at=point)
    job = split.submit_file(make_video(tmp_path / "clip.mp4", frames=15))
    assert crashing.wait(60) == 137
    split.start("w2", "worker")
    record = split.wait_done(job["id"], timeout_s=LEASE_S + 30)
    assert record["status"] == "succeeded", record
    assert record["attempts"] == attempts
    assert attempt_dirs(split, job["id"]) == [f"attempt-{attempts}"]
    # a second terminal event never follows: the record stays as it is
    assert split.client.job(job["id"])["finished_at"] == record["finished_at"]


def test_api_dies_between_the_job_row_and_the_publish(split: Deployment, tmp_path: Path) -> None:
    split.signal("api", 15)
    split.procs["api"].wait(15)
    split.start("api2", "api", crash_at="after_insert")
    split.wait_ready()
    key = split.client.upload(make_video(tmp_path / "clip.mp4", frames=10))["key"]
    with pytest.raises(ServiceUnavailable) as died:  # the client sees the connection drop, never a 202
        split.client.submit({"pipeline": "detect", "input": {"key": key}})
    assert isinstance(died.value.__cause__, httpx.TransportError)
    assert split.procs["api2"].wait(15) == 137
    split.start("api3", "api")
    split.wait_ready()
    jobs = split.client.jobs()["jobs"]
    assert len(jobs) == 1 and jobs[0]["status"] == "queued"
    split.start("w1", "worker")
    record = split.wait_done(jobs[0]["id"], timeout_s=30)
    assert record["status"] == "succeeded" and record["attempts"] == 1
