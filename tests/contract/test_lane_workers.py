"""Lane-dedicated consumers (framequeue.brokers.base, URL option `lanes`), run against every broker backend: a
consumer opened for some lanes receives only from them, in the lanes' order with anti-starvation among them,
and what it leaves waits for the consumers of the other lanes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from framequeue.brokers import open_broker
from framequeue.brokers.base import Broker, Message
from framequeue.errors import InvalidParams
from framequeue.jobs import Priority
from tests.contract.backends import with_options
from tests.contract.test_lanes import take

HIGH, NORMAL, LOW = Priority.HIGH, Priority.NORMAL, Priority.LOW
#: the anti-starvation bound the brokers here are opened with, in seconds
MAX_WAIT_S = 1.0


@pytest.fixture
def open_lanes(broker_url: str) -> Iterator[Callable[[str], Broker]]:
    """open_lanes("high") -> a broker on the test's queue receiving only from those lanes ("" = every lane)."""
    opened: list[Broker] = []

    def make(lanes: str) -> Broker:
        b = open_broker(with_options(broker_url, low_max_wait_s=MAX_WAIT_S), lanes=lanes)
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.close()


def drain(broker: Broker, wait_s: float = 1.0) -> list[str]:
    """Every job id the broker hands out until none comes within wait_s, each acked."""
    got: list[str] = []
    while (msg := broker.receive(visibility_s=60, wait_s=wait_s)) is not None:
        got.append(msg.job_id)
        broker.ack(msg)
    return got


def test_a_high_only_consumer_never_receives_normal_or_low(open_lanes: Callable[[str], Broker]) -> None:
    producer = open_lanes("")
    producer.publish_many(["l1", "n1", "h1", "l2", "n2", "h2"], [LOW, NORMAL, HIGH, LOW, NORMAL, HIGH])
    high = open_lanes("high")
    assert drain(high) == ["h1", "h2"]
    time.sleep(MAX_WAIT_S + 0.2)  # the low ones are overdue now, served as normal: still not high
    assert high.receive(visibility_s=60, wait_s=0.5) is None
    # what it left is still there, for the other lanes' consumers (in an order the anti-starvation cases pin)
    assert sorted(take(open_lanes("normal,low"), 4)) == ["l1", "l2", "n1", "n2"]


def test_a_waiting_high_only_consumer_wakes_for_a_high_job_only(open_lanes: Callable[[str], Broker]) -> None:
    high = open_lanes("high")
    producer = open_lanes("")
    got: list[Message | None] = []
    waiter = threading.Thread(target=lambda: got.append(high.receive(visibility_s=60, wait_s=10)))
    waiter.start()
    time.sleep(0.3)
    producer.publish_many(["n1", "l1"], [NORMAL, LOW])
    time.sleep(0.5)
    assert not got, "a normal or low job woke the high-only consumer"
    producer.publish("h1", HIGH)
    waiter.join(15)
    assert len(got) == 1 and got[0] is not None and got[0].job_id == "h1"
    high.ack(got[0])


def test_a_normal_and_low_consumer_leaves_high_and_keeps_anti_starvation(
    open_lanes: Callable[[str], Broker],
) -> None:
    producer = open_lanes("")
    producer.publish("starved", LOW)
    time.sleep(MAX_WAIT_S + 0.5)
    producer.publish_many(["fresh-low", "n1", "n2", "h1"], [LOW, NORMAL, NORMAL, HIGH])
    bulk = open_lanes("normal,low")
    # the overdue low one ranks as normal and is older than n1, n2; the fresh low one waits for them
    assert drain(bulk) == ["starved", "n1", "n2", "fresh-low"]
    assert take(open_lanes("high"), 1) == ["h1"]


def test_a_nacked_message_goes_back_to_its_own_lane_consumers(open_lanes: Callable[[str], Broker]) -> None:
    producer = open_lanes("")
    producer.publish_many(["h1", "n1"], [HIGH, NORMAL])
    high = open_lanes("high")
    msg = high.receive(visibility_s=60, wait_s=5)
    assert msg is not None and msg.job_id == "h1"
    high.nack(msg)
    assert drain(open_lanes("normal")) == ["n1"]
    again = high.receive(visibility_s=60, wait_s=5)
    assert again is not None and (again.job_id, again.deliveries) == ("h1", 2)
    high.ack(again)


@pytest.mark.parametrize("lanes", ["urgent", "high,bulk"])
def test_an_unknown_lane_is_refused(broker_url: str, lanes: str) -> None:
    with pytest.raises(InvalidParams):
        open_broker(broker_url, lanes=lanes)
