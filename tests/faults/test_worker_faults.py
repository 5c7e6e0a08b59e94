"""Workers killed, paused past their lease, and stopped mid-job: every job still ends exactly once."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.acceptance.deployment import Deployment

pytestmark = pytest.mark.slow




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
    # the killed attempt lost its lease; the second worker's succeeded, each with its own worker and times
    history = record["attempt_history"]
    assert [(a["attempt"], a["outcome"], a["error"]) for a in history] == [
        (1, "lease_lost", None), (2, "succeeded", None)
    ]
    assert history[0]["worker"] != history[1]["worker"]
    assert history[0]["started_at"] < history[0]["ended_at"] <= history[1]["started_at"] < history[1]["ended_at"]
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
    # the paused attempt lost its lease; the stale worker's late commit left the history as it was
    assert [(a["attempt"], a["outcome"]) for a in record["attempt_history"]] == [(1, "lease_lost"), (2, "succeeded")]
    assert after["attempt_history"] == record["attempt_history"]
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
    outcomes = [a["outcome"] for a in record["attempt_history"]]
    assert outcomes == (["succeeded"] if handed_back["status"] == "succeeded" else ["handed_back", "succeeded"])
    detections = json.loads((split.home / "objects" / record["outputs"]["detections"]).read_text())
    assert len(detections["frames"]) == 221


def media_children(worker_pid: int) -> list[int]:
    """Pids of the media processes a worker's fork server started (children of the fork server)."""
    procs: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        procs[int(entry.name)] = (ppid, cmdline)
    servers = {pid for pid, (ppid, cmd) in procs.items() if ppid == worker_pid and "forkserver" in cmd}
    return [pid for pid, (ppid, _) in procs.items() if ppid in servers]


def test_a_job_that_crashes_its_media_process_every_time_fails_after_max_attempts(
    split: Deployment, dashcam_video: Path, tmp_path: Path
) -> None:
    from tests.mediagen import make_video

    worker = split.start("w1", "worker")
    job = split.submit_file(dashcam_video)
    killed: set[int] = set()
    deadline = time.monotonic() + 90
    while split.client.job(job["id"])["status"] in {"queued", "running"} and time.monotonic() < deadline:
        for pid in media_children(worker.pid):
            if pid not in killed:
                killed.add(pid)
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    record = split.client.job(job["id"])
    assert record["status"] == "failed", record
    # each attempt's child was killed; the warm child started after the last attempt may be killed too
    assert record["attempts"] == 3 and len(killed) >= 3
    assert record["error"]["code"] == "attempts_exhausted"
    assert "worker_crashed" in record["error"]["message"]
    assert worker.poll() is None  # the worker survived all three crashes
    good = split.wait_done(split.submit_file(make_video(tmp_path / "ok.mp4", frames=10))["id"], timeout_s=60)
    assert good["status"] == "succeeded"


def test_a_job_nobody_starts_within_its_ttl_ends_expired(split: Deployment, tmp_path: Path) -> None:
    from tests.mediagen import make_video

    job = split.submit_file(make_video(tmp_path / "late.mp4", frames=5), ttl_s=1)
    record = split.wait_done(job["id"], timeout_s=15)  # no worker runs; the API's reaper ends it
    assert record["status"] == "expired" and record["error"]["code"] == "expired"
    assert record["attempts"] == 0 and record["started_at"] is None
    split.start("w1", "worker")
    time.sleep(2)  # a worker that receives the stale message must not run it
    assert split.client.job(job["id"])["status"] == "expired"


def test_a_poison_job_fails_after_max_attempts_while_20_others_succeed(split: Deployment, tmp_path: Path) -> None:
    for name in ("w1", "w2"):
        split.start(name, "worker")
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"x")
    key = split.client.upload(payload)["key"]
    poison = split.client.submit({"pipeline": "noop", "input": {"key": key}, "params": {"crash": True}})
    others = [split.client.submit({"pipeline": "noop", "input": {"key": key}}) for _ in range(20)]
    record = split.wait_done(poison["id"], timeout_s=60)
    assert record["status"] == "failed" and record["attempts"] == 3
    assert record["error"]["code"] == "attempts_exhausted" and "worker_crashed" in record["error"]["message"]
    for job in others:
        done = split.wait_done(job["id"], timeout_s=60)
        assert done["status"] == "succeeded" and done["attempts"] == 1
    assert all(split.procs[n].poll() is None for n in ("w1", "w2"))
