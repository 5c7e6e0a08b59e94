"""The broker URL's `lanes` option (framequeue.brokers.urls) and how open_broker adds a worker's FQ_LANES."""

from __future__ import annotations

import pytest

from framequeue.brokers import open_broker
from framequeue.brokers.urls import parse_broker_url, parse_lanes
from framequeue.errors import InvalidParams
from framequeue.jobs import PRIORITIES, Priority

HIGH, NORMAL, LOW = Priority.HIGH, Priority.NORMAL, Priority.LOW


@pytest.mark.parametrize(("text", "lanes"), [
    ("", PRIORITIES), ("all", PRIORITIES), ("high", (HIGH,)), ("low,normal", (NORMAL, LOW)),
    (" High , low ", (HIGH, LOW)), ("normal,normal", (NORMAL,)), ("high,", (HIGH,)),
])
def test_lanes_parse_into_serving_order(text: str, lanes: tuple[Priority, ...]) -> None:
    assert parse_lanes(text) == lanes


@pytest.mark.parametrize("text", ["urgent", "high;low", "high,bulk"])
def test_unknown_lanes_are_refused(text: str) -> None:
    with pytest.raises(InvalidParams, match="unknown lane"):
        parse_lanes(text)


def test_the_option_leaves_the_server_url_alone() -> None:
    opts = parse_broker_url("redis://localhost:6379/0?queue=q&lanes=normal,low&socket_timeout=3")
    assert opts.lanes == (NORMAL, LOW) and opts.queue == "q"
    assert opts.server_url == "redis://localhost:6379/0?socket_timeout=3"
    assert parse_broker_url("sqlite:////tmp/fq.db").lanes == PRIORITIES


def test_a_url_that_names_its_lanes_wins_over_the_workers_setting() -> None:
    producer = open_broker("memory://lanes-option")
    high_by_url = open_broker("memory://lanes-option?lanes=high", lanes="low")
    low_by_setting = open_broker("memory://lanes-option", lanes="low")
    try:
        producer.publish_many(["l1", "h1"], [LOW, HIGH])
        got = high_by_url.receive(visibility_s=60, wait_s=0.5)
        assert got is not None and got.job_id == "h1"
        assert high_by_url.receive(visibility_s=60, wait_s=0.2) is None
        got = low_by_setting.receive(visibility_s=60, wait_s=0.5)
        assert got is not None and got.job_id == "l1"
    finally:
        for b in (producer, high_by_url, low_by_setting):
            b.close()
