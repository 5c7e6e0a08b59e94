"""The autoscaler's QueueObserver for a worker group of some lanes (`framequeue autoscale --lanes`): the load
is those lanes' waiting messages and running jobs only. A real memory broker and a real memory job store."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from framequeue.brokers import open_broker
from framequeue.brokers.base import Broker
from framequeue.jobs import Priority
from framequeue.jobstore import JobStore, open_jobstore
from framequeue.scaling.autoscale.observe import QueueLoad, QueueObserver
from tests.contract.conftest import LEASE_S, T0, new_job

HIGH, NORMAL, LOW = Priority.HIGH, Priority.NORMAL, Priority.LOW


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    return f"memory://observer-{request.node.name}"


@pytest.fixture
def broker(url: str) -> Iterator[Broker]:
    b = open_broker(url)
    yield b
    b.close()


@pytest.fixture
def store(url: str) -> Iterator[JobStore]:
    s = open_jobstore(url, lambda job: json.dumps({"id": job.id}).encode())
    yield s
    s.close()


def test_a_groups_load_is_its_own_lanes(url: str, broker: Broker, store: JobStore) -> None:
    for job_id, lane in (("h1", HIGH), ("h2", HIGH), ("n1", NORMAL), ("l1", LOW), ("l2", LOW), ("l3", LOW)):
        store.create(new_job(job_id, priority=lane))
        broker.publish(job_id, lane)
    # a high and a low job running, received and claimed by workers of their lanes on host "here"
    for pid, lane in ((11, HIGH), (12, LOW)):
        worker = open_broker(url, lanes=lane.value)
        msg = worker.receive(visibility_s=60, wait_s=1)
        worker.close()
        assert msg is not None
        assert store.claim(msg.job_id, f"here:{pid}", LEASE_S, T0 + 1) is not None
    assert QueueObserver(broker, store, host="here", lanes=(HIGH,))() == QueueLoad(1, 1, frozenset({11}))
    assert QueueObserver(broker, store, host="here", lanes=(NORMAL, LOW))() == QueueLoad(3, 1, frozenset({12}))
    # every lane: as before, the broker's totals and every running job
    assert QueueObserver(broker, store, host="here")() == QueueLoad(4, 2, frozenset({11, 12}))
