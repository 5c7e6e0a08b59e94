"""The service keeps a job's lane: submit publishes in it, and the reaper's re-publish of an expired lease
(which names no priority) reads it from the job store. Real SQLite store, memory broker and objects."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from framequeue.config import Settings
from framequeue.jobs import Priority
from framequeue.runtime import Runtime, open_runtime
from framequeue.service import SubmitRequest
from framequeue.tenants.auth import Principal

ALICE = Principal("alice", "submit", "k1")


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    name = uuid.uuid4().hex
    runtime = open_runtime(Settings(home=tmp_path, storage_url=f"memory://{name}",
                                    broker_url=f"memory://{name}").resolved())
    yield runtime
    runtime.close()


def submit(rt: Runtime, priority: Priority) -> str:
    key = f"uploads/{ALICE.tenant}/{uuid.uuid4().hex}/clip.mp4"
    rt.objects.put(key, b"x" * 10)
    req = SubmitRequest(pipeline="noop", input_key=key, priority=priority)
    return str(rt.service.submit(req, ALICE).record["id"])


def test_submit_publishes_in_the_jobs_lane_and_a_republish_keeps_it(rt: Runtime) -> None:
    low = submit(rt, Priority.LOW)
    high = submit(rt, Priority.HIGH)
    normal = submit(rt, Priority.NORMAL)
    assert rt.service.get(high, ALICE)["priority"] == "high"
    first = rt.broker.receive(visibility_s=60, wait_s=1)
    assert first is not None and first.job_id == high
    rt.broker.ack(first)
    # the high job's message is gone; published again as the reaper does, without a priority
    rt.service.publish(high)
    again = rt.broker.receive(visibility_s=60, wait_s=1)
    assert again is not None and again.job_id == high  # still ahead of the normal and low ones
    rt.broker.ack(again)
    rest = [rt.broker.receive(visibility_s=60, wait_s=1) for _ in range(2)]
    assert [m.job_id for m in rest if m is not None] == [normal, low]


def test_the_priority_is_part_of_the_idempotency_fingerprint_only_when_named() -> None:
    plain = SubmitRequest(pipeline="noop", input_key="k", idempotency_key="x")
    assert plain.fingerprint() == SubmitRequest(pipeline="noop", input_key="k", idempotency_key="x",
                                                priority=Priority.NORMAL).fingerprint()
    assert plain.fingerprint() != SubmitRequest(pipeline="noop", input_key="k", idempotency_key="x",
                                                priority=Priority.HIGH).fingerprint()
