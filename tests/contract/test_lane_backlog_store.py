"""JobStateStore.lane_backlog, on every store backend: queued and running jobs per (lane, tenant), with the
oldest queued job's age; ended jobs count nowhere."""

from __future__ import annotations

from framequeue.jobs import LaneBacklog, Priority
from framequeue.jobstore import JobStore
from tests.contract.conftest import LEASE_S, T0, new_job

HIGH, NORMAL, LOW = Priority.HIGH, Priority.NORMAL, Priority.LOW


def backlog(store: JobStore) -> dict[tuple[Priority, str], tuple[int, int, float | None]]:
    got = store.lane_backlog()
    assert all(isinstance(entry, LaneBacklog) for entry in got)
    as_dict = {(e.priority, e.tenant): (e.queued, e.running, e.oldest_queued_at_s) for e in got}
    assert len(as_dict) == len(got), "one entry per (priority, tenant)"
    return as_dict


def test_an_empty_store_has_no_backlog(store: JobStore) -> None:
    assert backlog(store) == {}


def test_queued_and_running_jobs_are_counted_per_lane_and_tenant(store: JobStore) -> None:
    store.create_many([
        (new_job("a-high-1", tenant="acme", priority=HIGH, created_at_s=T0 + 5), None),
        (new_job("a-high-2", tenant="acme", priority=HIGH, created_at_s=T0 + 2), None),
        (new_job("a-low-1", tenant="acme", priority=LOW, created_at_s=T0 + 1), None),
        (new_job("b-norm-1", tenant="beta", created_at_s=T0 + 3), None),
        (new_job("b-norm-2", tenant="beta", created_at_s=T0 + 4), None),
        (new_job("b-high-1", tenant="beta", priority=HIGH, created_at_s=T0 + 6), None),
    ])
    assert store.claim("a-high-2", "worker-a", LEASE_S, T0 + 10) is not None  # running now
    assert store.claim("b-high-1", "worker-b", LEASE_S, T0 + 10) is not None
    assert backlog(store) == {
        (HIGH, "acme"): (1, 1, T0 + 5),  # the running one is not the oldest queued any more
        (LOW, "acme"): (1, 0, T0 + 1),
        (NORMAL, "beta"): (2, 0, T0 + 3),
        (HIGH, "beta"): (0, 1, None),
    }


def test_ended_jobs_count_nowhere(store: JobStore) -> None:
    store.create_many([(new_job("gone", priority=LOW), None), (new_job("waiting", priority=LOW,
                                                                       created_at_s=T0 + 7), None)])
    store.cancel("gone", T0 + 1)
    assert backlog(store) == {(LOW, "default"): (1, 0, T0 + 7)}
