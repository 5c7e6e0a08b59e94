"""The job store's backlog per lane and tenant on the API's /metrics: bounded tenant labels, every lane's
outstanding count and oldest age always present, read from a real (in-memory) job store."""

from __future__ import annotations

import json

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from framequeue.brokers.base import QueueStats
from framequeue.jobs import Job, LaneBacklog, Priority
from framequeue.jobstore import open_jobstore
from framequeue.metrics import OTHER_TENANTS, api_registry, lane_series
from tests.contract.conftest import LEASE_S, T0, new_job

HIGH, NORMAL, LOW = Priority.HIGH, Priority.NORMAL, Priority.LOW
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(body: bytes) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def _render(job: Job) -> bytes:
    return json.dumps({"id": job.id}).encode()


def test_tenants_past_the_top_n_count_as_other() -> None:
    backlog = [
        LaneBacklog(HIGH, "big", 5, 1, T0), LaneBacklog(LOW, "big", 100, 0, T0 + 1),
        LaneBacklog(NORMAL, "mid", 20, 2, T0 + 2),
        LaneBacklog(NORMAL, "small-a", 1, 0, T0 + 3), LaneBacklog(HIGH, "small-b", 2, 0, T0 + 4),
        LaneBacklog(LOW, "small-b", 0, 3, None),
    ]
    got = lane_series(backlog, top_tenants=2, now_s=T0 + 10)
    assert got.queued == {
        (HIGH, "big"): 5, (LOW, "big"): 100, (NORMAL, "mid"): 20,
        (NORMAL, OTHER_TENANTS): 1, (HIGH, OTHER_TENANTS): 2,  # small-b's running ones are not queued
    }
    assert got.outstanding == {HIGH: 8, NORMAL: 23, LOW: 103}
    assert got.oldest_age_s == {HIGH: 10.0, NORMAL: 8.0, LOW: 9.0}
    assert lane_series(backlog, top_tenants=0, now_s=T0).queued == {
        (HIGH, OTHER_TENANTS): 7, (LOW, OTHER_TENANTS): 100, (NORMAL, OTHER_TENANTS): 21,
    }


def test_ties_keep_the_first_tenants_by_name_so_the_labels_do_not_flap() -> None:
    backlog = [LaneBacklog(NORMAL, name, 3, 0, T0) for name in ("c", "a", "b")]
    assert set(lane_series(backlog, top_tenants=2, now_s=T0).queued) == {
        (NORMAL, "a"), (NORMAL, "b"), (NORMAL, OTHER_TENANTS)}


def test_the_api_registry_serves_the_job_stores_lanes() -> None:
    store = open_jobstore("memory://lane-metrics-test", _render)
    try:
        store.create_many([
            (new_job("h1", tenant="acme", priority=HIGH, created_at_s=T0), None),
            (new_job("h2", tenant="acme", priority=HIGH, created_at_s=T0), None),
            (new_job("l1", tenant="beta", priority=LOW, created_at_s=T0), None),
        ])
        assert store.claim("h1", "w", LEASE_S, T0 + 1) is not None
        registry = api_registry(lambda: QueueStats(ready=2, in_flight=1), None, store.lane_backlog, top_tenants=1)
        got = _samples(generate_latest(registry))
    finally:
        store.close()
    assert got[("framequeue_lanes_up", ())] == 1
    assert got[("framequeue_backlog_by_tenant_jobs", (("priority", "high"), ("tenant", "acme")))] == 1
    assert got[("framequeue_backlog_by_tenant_jobs", (("priority", "low"), ("tenant", OTHER_TENANTS)))] == 1
    assert got[("framequeue_outstanding_by_priority_jobs", (("priority", "high"),))] == 2
    assert got[("framequeue_outstanding_by_priority_jobs", (("priority", "normal"),))] == 0
    assert got[("framequeue_outstanding_by_priority_jobs", (("priority", "low"),))] == 1
    assert got[("framequeue_oldest_queued_by_priority_age_seconds", (("priority", "normal"),))] == 0
    assert got[("framequeue_oldest_queued_by_priority_age_seconds", (("priority", "low"),))] > 0
    assert got[("framequeue_backlog_jobs", ())] == 2  # the broker's totals stay as they were


def test_a_failing_job_store_says_lanes_down_and_keeps_the_queue_metrics() -> None:
    def broken() -> list[LaneBacklog]:
        raise ConnectionError("refused")

    got = _samples(generate_latest(api_registry(lambda: QueueStats(ready=1, in_flight=0), None, broken)))
    assert got[("framequeue_lanes_up", ())] == 0
    assert got[("framequeue_queue_up", ())] == 1
    assert not [k for k in got if k[0] == "framequeue_outstanding_by_priority_jobs"]
