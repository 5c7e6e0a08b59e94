"""A broker restarted mid-queue, mid-job and under an idle worker, on a second instance of the test's own
for each real broker (tests/faults/instances.py, on ports of its own, so the shared services are never
disturbed): Redis without persistence (a restart loses every message), NATS JetStream keeping its file
store or coming back without it ("nats-wiped"), a second RabbitMQ node keeping its quorum queues, and a
second PostgreSQL cluster that is the job store as well as the queue (so the store restarts too). Nothing
is lost, every job ends in exactly one terminal state, a duplicate of a finished job's message is turned
away, and a job submitted afterwards still succeeds.

The jobs run the `noop` pipeline: `sleep_s` keeps one running while its broker restarts, with no media
work in the way."""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from framequeue.brokers import open_broker
from tests.acceptance.deployment import Deployment
from tests.contract.backends import cleanup, require_service
from tests.faults.conftest import LEASE_S
from tests.faults.instances import INSTANCES, Instance

pytestmark = pytest.mark.slow

#: a restart of a NATS server that lost its store, before any worker took the messages, is Redis' case
MID_QUEUE = ["redis", "nats", "rabbitmq", "postgres"]
EVERY = ["redis", "nats", "nats-wiped", "rabbitmq", "postgres"]
#: how long a job may take to end once it can, on 2 busy cores
DONE_S = 60.0
TERMINAL = {"succeeded", "failed", "cancelled", "expired"}


@pytest.fixture
def instance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Instance]:
    cls, options = INSTANCES[request.param]
    reason = cls.missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must have it, to start a second {cls.kind} instance")
        pytest.skip(reason)
    if not cls.hosts_store:
        require_service("postgres")  # the job store
    inst = cls(tmp_path, **options)
    try:
        inst.start()
        yield inst
    finally:
        inst.close()


@pytest.fixture
def deployment(instance: Instance, tmp_path: Path) -> Iterator[Deployment]:
    ns = f"fq_restart_{uuid.uuid4().hex[:12]}"
    store_url = instance.store_url(ns)
    dep = Deployment(
        tmp_path, lease_s=LEASE_S, heartbeat_s=1, reap_interval_s=1, drain_s=1, republish_after_s=2,
        republish_queued_after_s=3, database_url=store_url, broker_url=instance.broker_url(ns),
    )
    try:
        dep.start("api", "api")
        dep.wait_ready()
        yield dep
    finally:
        dep.stop()
        if not instance.hosts_store:
            cleanup(store_url)


def submit_noop(dep: Deployment, tmp_path: Path, sleep_s: float = 0.0) -> dict[str, Any]:
    payload = tmp_path / "payload.bin"
    if not payload.exists():
        payload.write_bytes(b"x" * 64)
    key = dep.client.upload(payload)["key"]
    return dep.client.submit({"pipeline": "noop", "input": {"key": key}, "params": {"sleep_s": sleep_s}})


def wait_done(dep: Deployment, worker: subprocess.Popen[bytes], job_id: str) -> dict[str, Any]:
    """The job's final record; fails at once if the worker died meanwhile (no one else would run it)."""
    record = dep.wait_for(job_id, lambda r: r["status"] in TERMINAL or worker.poll() is not None, DONE_S)
    assert worker.poll() is None, f"the worker died (exit code {worker.returncode}); see w1.log"
    return record


def commits(dep: Deployment, *workers: str, expect: set[str] | None = None, timeout_s: float = 15.0) -> Counter[str]:
    """How many times each job was committed as succeeded, from the workers' logs. A worker logs the commit
    after its ack, so a job's record may say succeeded a moment before its line is written: with `expect`,
    wait (up to timeout_s) until every expected job has its line."""
    deadline = time.monotonic() + timeout_s
    while True:
        found: Counter[str] = Counter()
        for name in workers:
            found.update(re.findall(r"job ([0-9a-f]{32}): succeeded", dep.log(name)))
        if expect is None or expect <= set(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def publish_duplicate(dep: Deployment, job_id: str) -> None:
    """Put the job's id on the queue once more, as a republish or a redelivery would."""
    broker = open_broker(dep.env["FQ_BROKER_URL"])
    try:
        broker.publish(job_id)
    finally:
        broker.close()


@pytest.mark.parametrize("instance", MID_QUEUE, indirect=True)
def test_queued_jobs_survive_a_broker_restart(instance: Instance, deployment: Deployment, tmp_path: Path) -> None:
    dep = deployment
    jobs = [submit_noop(dep, tmp_path) for _ in range(3)]
    instance.restart()  # no worker has taken them yet; Redis comes back without their messages
    worker = dep.start("w1", "worker")
    for job in jobs:
        record = wait_done(dep, worker, job["id"])
        assert record["status"] == "succeeded" and record["attempts"] == 1, record
    assert commits(dep, "w1", expect={j["id"] for j in jobs}) == Counter({job["id"]: 1 for job in jobs})
    after = wait_done(dep, worker, submit_noop(dep, tmp_path)["id"])
    assert after["status"] == "succeeded", after


@pytest.mark.parametrize("instance", EVERY, indirect=True)
def test_a_job_running_while_the_broker_restarts_ends_once(
    instance: Instance, deployment: Deployment, tmp_path: Path
) -> None:
    dep = deployment
    worker = dep.start("w1", "worker")
    job = submit_noop(dep, tmp_path, sleep_s=instance.restart_s + 5)
    dep.wait_for(job["id"], lambda r: r["status"] == "running", timeout_s=DONE_S)
    instance.restart()
    assert dep.client.job(job["id"])["status"] == "running", "the restart took longer than the job"
    record = wait_done(dep, worker, job["id"])
    assert record["status"] == "succeeded" and record["attempts"] in (1, 2), record

    # a duplicate of its message must be turned away, not run again; the next job waits behind it in the
    # queue, so by the time that one has succeeded the worker has seen the duplicate
    publish_duplicate(dep, job["id"])
    after = wait_done(dep, worker, submit_noop(dep, tmp_path)["id"])
    assert after["status"] == "succeeded" and after["attempts"] == 1, after
    again = dep.client.job(job["id"])
    assert (again["status"], again["attempts"], again["finished_at"], again["outputs"]) == (
        "succeeded", record["attempts"], record["finished_at"], record["outputs"])
    assert commits(dep, "w1", expect={job["id"]})[job["id"]] == 1


@pytest.mark.parametrize("instance", ["redis", "nats", "nats-wiped", "rabbitmq", "postgres"], indirect=True)
def test_an_idle_worker_rides_out_a_broker_restart(instance: Instance, deployment: Deployment, tmp_path: Path) -> None:
    dep = deployment
    worker = dep.start("w1", "worker")
    first = wait_done(dep, worker, submit_noop(dep, tmp_path)["id"])  # the worker is up, and waits for work
    assert first["status"] == "succeeded", first
    instance.restart()
    job = submit_noop(dep, tmp_path)
    record = wait_done(dep, worker, job["id"])
    assert record["status"] == "succeeded" and record["attempts"] == 1, record
    assert commits(dep, "w1", expect={first["id"], job["id"]}) == Counter({first["id"]: 1, job["id"]: 1})
