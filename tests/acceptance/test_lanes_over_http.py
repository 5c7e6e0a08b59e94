"""Lanes against a real `framequeue up` (API and one worker): a `high` job submitted while the worker is busy
with a backlog of `low` ones starts in the worker's next job slot; the priority is in the record, a
request-reply submit (Prefer: wait) defaults to `high`, and an unknown priority is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.deployment import Deployment

pytestmark = pytest.mark.slow

#: seconds each low job runs, so the worker is busy when the high one comes
LOW_SLEEP_S = 1.0


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("lanes"), lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2)
    d.start("up", "up", "--workers", "1")
    d.wait_ready()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def input_key(dep: Deployment, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("inputs") / "in.bin"
    path.write_bytes(b"x" * 16)
    return dep.client.upload(path)["key"]


def test_a_high_job_starts_in_the_busy_workers_next_slot(dep: Deployment, input_key: str) -> None:
    low = {"pipeline": "noop", "input": {"key": input_key}, "params": {"sleep_s": LOW_SLEEP_S}, "priority": "low"}
    lows = [r["job"] for r in dep.client.submit_many([low] * 6)]
    assert all(job["priority"] == "low" for job in lows)
    # the worker takes the first low job; then a high one comes
    dep.wait_for(lows[0]["id"], lambda job: job["status"] == "running", timeout_s=30)
    high = dep.client.submit({"pipeline": "noop", "input": {"key": input_key}, "priority": "high"})
    assert high["priority"] == "high"
    done = dep.wait_for(high["id"], lambda job: job["status"] == "succeeded", timeout_s=60)
    started = {job["id"]: dep.client.job(job["id"])["started_at"] for job in lows}
    ran_before = sorted(i for i, at in started.items() if at is not None and at < done["started_at"])
    # at most the job it held when the high one came, and maybe the one it had already taken next
    assert lows[0]["id"] in ran_before and len(ran_before) <= 2, started


def test_prefer_wait_defaults_to_high_and_a_named_lane_stays(dep: Deployment, input_key: str) -> None:
    body = {"pipeline": "noop", "input": {"key": input_key}}
    url = f"{dep.base_url}/v1/jobs"
    with httpx.Client(timeout=30) as http:
        waited = http.post(url, json=body, headers={"Prefer": "wait=20"})
        assert waited.status_code in (200, 202) and waited.json()["priority"] == "high"
        named = http.post(url, json={**body, "priority": "low"}, headers={"Prefer": "wait=1"})
        assert named.json()["priority"] == "low"
        plain = http.post(url, json=body)
        assert plain.status_code == 202 and plain.json()["priority"] == "normal"
        wrong = http.post(url, json={**body, "priority": "urgent"})
        assert wrong.status_code == 400, wrong.text


def test_the_cli_submits_in_a_lane(dep: Deployment, tmp_path: Path) -> None:
    video = tmp_path / "in.bin"
    video.write_bytes(b"x" * 16)
    out = dep.cli("submit", str(video), "--pipeline", "noop", "--priority", "low", "-o", "json",
                  "--server", dep.base_url, check=False)
    assert out.returncode == 0, out.stderr
    assert '"priority": "low"' in out.stdout
