"""Per-tenant fair share against a real API and worker process: tenant B's few jobs submitted after tenant A's
backlog run in turns with A's instead of after it, and every job still runs exactly once (the worker runs B's
job in the turn of A's message, publishes A's job again and acks A's message after the run)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from framequeue.client import Client
from tests.acceptance.deployment import Deployment

pytestmark = pytest.mark.slow

#: seconds each job runs, so that A's backlog is still long when B's jobs come
JOB_S = 0.2
A_JOBS, B_JOBS = 40, 5


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, Client, Client]]:
    d = Deployment(tmp_path_factory.mktemp("fair"), lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2)
    keys = [d.cli("keys", "create", "--tenant", t, "--scope", "submit", "--name", t).stdout.strip() for t in "ab"]
    try:
        d.start("api", "api")
        d.wait_ready()
        d.start("w1", "worker")
        with Client(d.base_url, api_key=keys[0]) as a, Client(d.base_url, api_key=keys[1]) as b:
            yield d, a, b
    finally:
        d.stop()


def succeeded(client: Client, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        record = dict(client.job(job_id))
        if record["status"] == "succeeded":
            return record
        assert record["status"] in {"queued", "running"} and time.monotonic() < deadline, record
        time.sleep(0.2)


def test_a_small_backlog_is_served_in_turns_with_a_large_one(
    dep: tuple[Deployment, Client, Client], tmp_path: Path
) -> None:
    d, a, b = dep
    path = tmp_path / "in.bin"
    path.write_bytes(b"x" * 16)

    def body(client: Client) -> dict[str, object]:
        return {"pipeline": "noop", "input": {"key": client.upload(path)["key"]}, "params": {"sleep_s": JOB_S}}

    a_ids = [item["job"]["id"] for item in a.submit_many([body(a)] * A_JOBS)]
    b_ids = [item["job"]["id"] for item in b.submit_many([body(b)] * B_JOBS)]
    last_b = max((succeeded(b, job_id) for job_id in b_ids), key=lambda r: r["finished_at"])
    a_started = [r["started_at"] for r in (a.job(job_id) for job_id in a_ids) if r["started_at"] is not None]
    # one worker: B's five in turns with A's (A's first few may have run before B's came), not after all of A's
    assert len([t for t in a_started if t < last_b["finished_at"]]) <= B_JOBS + 4, a_started
    for job_id in a_ids:
        assert succeeded(a, job_id)["attempts"] == 1
    assert "in the turn of job" in d.log("w1")
