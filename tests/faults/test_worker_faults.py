"""Workers killed, paused past their lease, and stopped mid-job: every job still ends exactly once."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.deployment import Deployment
from tests.conftest import require_shared

pytestmark = pytest.mark.slow

LEASE_S = 4


@pytest.fixture
def split(tmp_path: Path) -> Iterator[Deployment]:
    """The API alone, with workers started by each test so it can kill or pause them."""
    dep = Deployment(tmp_path, lease_s=LEASE_S, heartbeat_s=1, reap_interval_s=1, drain_s=1)
    dep.register_yolox(require_shared("models", "yolox_nano"))
    dep.start("api", "api")
    dep.wait_ready()
    yield dep
    dep.stop()


def committed_outputs(dep: Deployment, job_id: str) -> list[str]:
    root = dep.home / "objects" / "outputs" / job_id
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_kill_9_mid_job_then_another_worker_finishes_it_once(split: Deployment, dashcam_video: Path) -> None:
    split.start("w1", "worker")
    job = split.submit_file(dashcam_video)
    split.wait_for(job["id"], lambda r: r["status"] == "running" and r["progress"]["frames_done"] > 20)
    split.signal("w1", signal.SIGKILL, group=True)  # the worker, its fork server and its media child
    split.start("w2", "worker")
    record = split.wait_done(job["id"], timeout_s=120)
    assert record["status"] == "succeeded", record
    assert record["attempts"] == 2
    files = committed_outputs(split, job["id"])
    assert files == ["attempt-2/annotated.mp4", "attempt-2/contact_sheet.png", "attempt-2/detections.json"]
    assert all(key.startswith(f"outputs/{job['id']}/attempt-2/") for key in record["outputs"].values())


def test_a_worker_paused_past_its_lease_cannot_commit(split: Deployment, dashcam_video: Path) -> None:
    split.start("w1", "worker")
    job = split.submit_file(dashcam_video)
    split.wait_for(job["id"], lambda r: r["status"] == "running" and r["progress"]["frames_done"] > 0)
    split.start("w2", "worker")
    split.signal("w1", signal.SIGSTOP)  # only the supervising process: its media child runs on
    try:
        record = split.wait_done(job["id"], timeout_s=120)
    finally:
        split.signal("w1", signal.SIGCONT)
    assert record["status"] == "succeeded" and record["attempts"] == 2
    # give the resumed worker time to try its commit; the record and the outputs must not change
    deadline = time.monotonic() + 10
    while "lease" not in split.log("w1") and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    assert "lease" in split.log("w1")
    after = split.client.job(job["id"])
    assert (after["status"], after["attempts"], after["finished_at"], after["outputs"]) == (
        "succeeded", 2, record["finished_at"], record["outputs"])
    assert committed_outputs(split, job["id"]) == [
        "attempt-2/annotated.mp4", "attempt-2/contact_sheet.png", "attempt-2/detections.json"]
    assert split.procs["w1"].poll() is None  # the stale worker is alive for the next job


def test_sigterm_hands_back_the_job_and_it_is_not_lost(split: Deployment, dashcam_video: Path) -> None:
    split.start("w1", "worker")
    job = split.submit_file(dashcam_video)
    split.wait_for(job["id"], lambda r: r["status"] == "running" and r["progress"]["frames_done"] > 0)
    split.signal("w1", signal.SIGTERM)
    assert split.procs["w1"].wait(30) == 0
    handed_back = split.client.job(job["id"])
    assert handed_back["status"] in {"queued", "succeeded"}
    split.start("w2", "worker")
    record = split.wait_done(job["id"], timeout_s=120)
    assert record["status"] == "succeeded"
    detections = json.loads((split.home / "objects" / record["outputs"]["detections"]).read_text())
    assert len(detections["frames"]) == 221
