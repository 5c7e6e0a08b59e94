"""The job stores keep a job's priority (its lane) from submit through a requeue, on every store backend."""

from __future__ import annotations

from framequeue.jobs import Priority
from framequeue.jobstore import JobStore
from tests.contract.conftest import LEASE_S, T0, new_job


def test_a_jobs_priority_is_stored_and_kept_through_a_requeue(store: JobStore) -> None:
    store.create(new_job("high-1", priority=Priority.HIGH))
    store.create_many([(new_job("low-1", priority=Priority.LOW), None), (new_job("plain"), None)])
    assert store.get("high-1").priority is Priority.HIGH
    assert store.get("low-1").priority is Priority.LOW
    assert store.get("plain").priority is Priority.NORMAL
    claimed = store.claim("low-1", "worker-a", LEASE_S, T0 + 1)
    assert claimed is not None
    assert store.reap(T0 + 1 + LEASE_S + 1) == ["low-1"]  # the lease ran out: queued again
    assert store.get("low-1").priority is Priority.LOW
