"""`framequeue autoscale` as a real process beside `framequeue api`: a burst of jobs takes it from 0 workers to
its max and back to 0, every job succeeds on its first attempt, and the decisions are logged and plotted."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.deployment import Deployment

pytestmark = pytest.mark.slow

MAX_WORKERS = 3
JOBS = 30
TERMINAL = {"succeeded", "failed", "cancelled", "expired"}


@pytest.fixture
def api_only(tmp_path: Path) -> Iterator[Deployment]:
    dep = Deployment(tmp_path, lease_s=30, heartbeat_s=2, reap_interval_s=1, drain_s=10)
    dep.start("api", "api")
    dep.wait_ready()
    yield dep
    dep.stop()  # the autoscaler too, if a failed assertion left it running


def _decisions(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait(pred: Any, timeout_s: float, what: str, log: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; autoscale log:\n{log()[-4000:]}")
        time.sleep(0.25)


def _is_worker(pid: int) -> bool:
    try:
        return b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _start_autoscaler(dep: Deployment, decisions: Path, plot: Path,
                      env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`framequeue autoscale` (as its module, which works before and after cli.py registers it), in its own
    process group with its workers' output in autoscale.log; waits for its first decisions."""
    cmd = [sys.executable, "-m", "framequeue", "autoscale", "--max-workers", str(MAX_WORKERS),
           "--interval-s", "0.5", "--scale-out-cooldown-s", "1", "--scale-in-cooldown-s", "2",
           "--idle-to-zero-s", "3", "--decisions", str(decisions), "--plot", str(plot)]
    with open(dep.root / "autoscale.log", "ab") as log:
        scaler = subprocess.Popen(cmd, env={**dep.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    dep.procs["autoscale"] = scaler  # dep.stop() stops it if a test fails first
    _wait(lambda: len(_decisions(decisions)) >= 2, 30, "the first decisions", lambda: dep.log("autoscale"))
    assert all(d["desired"] == 0 for d in _decisions(decisions)), "workers started with an empty queue"
    return scaler


def _submit(dep: Deployment, tmp_path: Path, n: int, sleep_s: float) -> list[str]:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"x")
    key = dep.client.upload(payload)["key"]
    body = {"pipeline": "noop", "input": {"key": key}, "params": {"sleep_s": sleep_s}}
    return [dep.client.submit(body)["id"] for _ in range(n)]


def test_a_burst_scales_from_zero_to_max_and_back(api_only: Deployment, tmp_path: Path) -> None:
    dep = api_only
    decisions, plot = tmp_path / "decisions.jsonl", tmp_path / "autoscale.png"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        metrics_port = s.getsockname()[1]
    # FQ_METRICS_PORT with several workers: the autoscaler serves them all on it (none binds it itself)
    scaler = _start_autoscaler(dep, decisions, plot, {"FQ_METRICS_PORT": str(metrics_port)})
    started = time.monotonic()
    ids = _submit(dep, tmp_path, JOBS, 1.0)

    def all_done() -> bool:
        return all(dep.client.job(i)["status"] in TERMINAL for i in ids)

    _wait(all_done, 75, "every job to end", lambda: dep.log("autoscale"))
    drained_s = time.monotonic() - started
    metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    assert f'framequeue_jobs_total{{outcome="succeeded"}} {float(JOBS)}' in metrics, metrics

    def back_to_zero() -> bool:
        rows = _decisions(decisions)
        return bool(rows) and rows[-1]["desired"] == 0 and rows[-1]["draining"] == 0 and rows[-1]["live"] == 0

    _wait(back_to_zero, 30, "the workers to go back to zero", lambda: dep.log("autoscale"))
    os.killpg(scaler.pid, signal.SIGTERM)
    assert scaler.wait(30) == 0, dep.log("autoscale")[-4000:]

    records = [dep.client.job(i) for i in ids]
    assert [(r["status"], r["attempts"]) for r in records] == [("succeeded", 1)] * JOBS, records

    rows = _decisions(decisions)
    desired = [r["desired"] for r in rows]
    first_max = desired.index(MAX_WORKERS)
    assert max(desired) == MAX_WORKERS
    assert desired[0] == 0 and 0 in desired[first_max:], desired
    assert rows[-1]["reason"].startswith("shutdown")
    started_pids = [p for r in rows for p in r["started"]]
    exited_pids = [p for r in rows for p in r["exited"]]
    assert len(started_pids) >= MAX_WORKERS
    assert sorted(exited_pids) == sorted(started_pids), "every worker was drained and reaped"
    assert not [p for r in rows for p in r["crashed"] + r["killed"]], "no worker crashed or was killed"
    assert not [p for p in started_pids if _is_worker(p)], "a worker outlived the autoscaler"

    text = dep.log("autoscale")
    assert "decision waiting=" in text and "SIGTERM to worker(s)" in text and "drained and exited" in text
    png = plot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    print(f"\n{JOBS} jobs drained in {drained_s:.1f} s; {len(rows)} decisions, {len(started_pids)} workers started")


def test_sigterm_drains_busy_workers_before_the_autoscaler_exits(api_only: Deployment, tmp_path: Path) -> None:
    dep = api_only
    decisions, plot = tmp_path / "decisions.jsonl", tmp_path / "autoscale.png"
    scaler = _start_autoscaler(dep, decisions, plot)
    ids = _submit(dep, tmp_path, 2 * MAX_WORKERS, 4.0)

    def all_busy() -> bool:
        return sum(dep.client.job(i)["status"] == "running" for i in ids) == MAX_WORKERS

    _wait(all_busy, 45, f"{MAX_WORKERS} jobs running", lambda: dep.log("autoscale"))
    running = [i for i in ids if dep.client.job(i)["status"] == "running"]
    os.killpg(scaler.pid, signal.SIGTERM)  # the autoscaler's group only: each worker has its own
    assert scaler.wait(45) == 0, dep.log("autoscale")[-4000:]

    # the workers finished the jobs they held (drain_s 10 > 4 s), took no new one, and are gone
    ended = [dep.client.job(i) for i in running]
    assert [(r["status"], r["attempts"]) for r in ended] == [("succeeded", 1)] * MAX_WORKERS
    assert all(dep.client.job(i)["status"] == "queued" for i in ids if i not in running)
    rows = _decisions(decisions)
    last = rows[-1]
    assert last["reason"].startswith("shutdown") and len(last["stopping"]) == MAX_WORKERS
    started_pids = [p for r in rows for p in r["started"]]
    assert sorted(p for r in rows for p in r["exited"]) == sorted(started_pids)
    assert not [p for p in started_pids if _is_worker(p)]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
