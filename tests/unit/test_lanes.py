"""The lanes' pure rules (framequeue.jobs): the serving order and the anti-starvation rank."""

from __future__ import annotations

import pytest

from framequeue.brokers.base import lanes_of
from framequeue.errors import InvalidParams
from framequeue.jobs import PRIORITIES, Priority, lane_rank
from framequeue.records import PriorityName


def test_lanes_are_served_high_normal_low_and_match_the_records_names() -> None:
    assert [lane.rank for lane in PRIORITIES] == [0, 1, 2]
    assert [lane.value for lane in PRIORITIES] == list(PriorityName.__args__)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("lane", "waited_s", "rank"), [
    (Priority.HIGH, 1000.0, 0),
    (Priority.NORMAL, 0.0, 1),
    (Priority.LOW, 0.0, 2),
    (Priority.LOW, 299.9, 2),
    (Priority.LOW, 300.0, 1),  # the bound itself is overdue
    (Priority.LOW, 1e6, 1),  # never above normal
])
def test_a_low_job_ranks_as_normal_once_it_waited_max_wait_s(lane: Priority, waited_s: float, rank: int) -> None:
    assert lane_rank(lane, waited_s, 300.0) == rank


def test_a_batch_without_lanes_is_all_normal_and_a_short_list_is_refused() -> None:
    assert lanes_of(["a", "b"], None) == [Priority.NORMAL, Priority.NORMAL]
    assert lanes_of(["a"], ["low"]) == [Priority.LOW]  # type: ignore[list-item]
    with pytest.raises(InvalidParams):
        lanes_of(["a", "b"], [Priority.HIGH])
