"""The queue's backlog per lane: its own metric, so the unlabelled totals (and sum() over them) stay."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from framequeue.brokers.base import QueueStats
from framequeue.jobs import Priority
from framequeue.metrics import api_registry


def _samples(stats: QueueStats) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = generate_latest(api_registry(lambda: stats)).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def test_the_backlog_per_lane_is_labelled_by_priority_and_the_total_stays_unlabelled() -> None:
    lanes = {Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3}
    got = _samples(QueueStats(ready=5, in_flight=0, delayed=1, waiting_by_priority=lanes))
    assert got[("framequeue_backlog_jobs", ())] == 6
    assert [k for k in got if k[0] == "framequeue_backlog_jobs"] == [("framequeue_backlog_jobs", ())]
    for lane, count in lanes.items():
        assert got[("framequeue_backlog_by_priority_jobs", (("priority", lane.value),))] == count


def test_a_broker_that_cannot_tell_the_lanes_exports_no_lane_backlog() -> None:
    got = _samples(QueueStats(ready=5, in_flight=0))
    assert not [k for k in got if k[0] == "framequeue_backlog_by_priority_jobs"]
