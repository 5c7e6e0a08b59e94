"""The lanes' contract (framequeue.brokers.base), run against every broker backend: a waiting message of a
higher lane is received first, a low one that waited low_max_wait_s is served as normal, a message keeps its
lane through redelivery and nack, and nothing is lost or doubled with mixed lanes."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from framequeue.brokers import open_broker
from framequeue.brokers.base import Broker, Message
from framequeue.jobs import Priority
from tests.contract.backends import with_options

HIGH, NORMAL, LOW = Priority.HIGH, Priority.NORMAL, Priority.LOW
#: the anti-starvation bound the starvation cases open their brokers with, in seconds
MAX_WAIT_S = 1.0


@pytest.fixture
def make_lane_broker(broker_url: str) -> Iterator[Callable[[], Broker]]:
    """Brokers on the test's queue whose low messages are served as normal after MAX_WAIT_S."""
    opened: list[Broker] = []

    def make() -> Broker:
        b = open_broker(with_options(broker_url, low_max_wait_s=MAX_WAIT_S))
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.close()


def take(broker: Broker, n: int, wait_s: float = 5.0) -> list[str]:
    """The next n job ids, each acked."""
    got: list[str] = []
    for _ in range(n):
        msg = broker.receive(visibility_s=60, wait_s=wait_s)
        assert msg is not None, f"only {got} came"
        got.append(msg.job_id)
        broker.ack(msg)
    return got


def test_high_jobs_queued_behind_a_thousand_low_ones_come_next(broker: Broker) -> None:
    low = [f"low-{i:04d}" for i in range(1000)]
    broker.publish_many(low, [LOW] * len(low))
    high = [f"high-{i}" for i in range(10)]
    for job_id in high:
        broker.publish(job_id, HIGH)
    assert take(broker, 10) == high
    assert take(broker, 3) == low[:3]


def test_lanes_are_served_high_then_normal_then_low(broker: Broker) -> None:
    broker.publish_many(["l1", "n1", "h1", "l2", "n2", "h2"], [LOW, NORMAL, HIGH, LOW, NORMAL, HIGH])
    broker.publish("n3")  # no lane named: normal
    assert take(broker, 7) == ["h1", "h2", "n1", "n2", "n3", "l1", "l2"]


def test_a_batch_names_one_lane_per_id(broker: Broker) -> None:
    from framequeue.errors import InvalidParams

    with pytest.raises(InvalidParams):
        broker.publish_many(["a", "b"], [HIGH])


def test_a_low_job_that_waited_max_wait_s_is_served_as_normal(make_lane_broker: Callable[[], Broker]) -> None:
    broker = make_lane_broker()
    broker.publish("starved", LOW)
    broker.publish("fresh-low", LOW)
    time.sleep(MAX_WAIT_S + 0.5)
    broker.publish("fresh-low-2", LOW)
    broker.publish_many(["n1", "n2"], [NORMAL, NORMAL])
    broker.publish("h1", HIGH)
    # high still first; the overdue low ones rank as normal and are older than n1, n2; the fresh one waits
    assert take(broker, 6) == ["h1", "starved", "fresh-low", "n1", "n2", "fresh-low-2"]


def test_within_max_wait_s_a_low_job_waits_for_normal_ones(make_lane_broker: Callable[[], Broker]) -> None:
    broker = make_lane_broker()
    broker.publish("l1", LOW)
    broker.publish("n1", NORMAL)
    assert take(broker, 2) == ["n1", "l1"]


def test_a_redelivered_message_keeps_its_lane(make_broker: Callable[[], Broker]) -> None:
    first = make_broker()
    first.publish("h", HIGH)
    msg = first.receive(visibility_s=0.5, wait_s=2)
    assert msg is not None and msg.job_id == "h"
    first.publish_many(["l", "n"], [LOW, NORMAL])
    if first.redelivery == "connection":
        first.close()  # the consumer's connection ends without an ack (as when its process dies)
    else:
        time.sleep(0.7)
    other = make_broker()
    again = other.receive(visibility_s=30, wait_s=10)
    assert again is not None and (again.job_id, again.deliveries) == ("h", 2)
    other.ack(again)
    assert take(other, 2) == ["n", "l"]


def test_a_nacked_message_keeps_its_lane(broker: Broker) -> None:
    broker.publish("h", HIGH)
    msg = broker.receive(visibility_s=60, wait_s=2)
    assert msg is not None
    broker.publish_many(["n", "l"], [NORMAL, LOW])
    broker.nack(msg)
    assert take(broker, 3) == ["h", "n", "l"]


def test_mixed_lanes_with_competing_consumers_lose_nothing(make_broker: Callable[[], Broker]) -> None:
    producer = make_broker()
    lanes = [HIGH, NORMAL, LOW]
    ids = [f"job-{i:03d}" for i in range(150)]
    producer.publish_many(ids[:100], [lanes[i % 3] for i in range(100)])
    for i, job_id in enumerate(ids[100:]):
        producer.publish(job_id, lanes[i % 3])
    got: Counter[str] = Counter()
    lock = threading.Lock()

    def drain(broker: Broker) -> None:
        while True:
            msg: Message | None = broker.receive(visibility_s=60, wait_s=1.0)
            if msg is None:
                return
            with lock:
                got[msg.job_id] += 1
            broker.ack(msg)

    threads = [threading.Thread(target=drain, args=(make_broker(),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(got) == ids
    assert set(got.values()) == {1}
    stats = producer.stats()
    assert (stats.ready, stats.in_flight) == (0, 0)


@pytest.mark.parametrize("lane", [HIGH, LOW])
def test_a_message_of_any_lane_delivered_too_often_is_dead_lettered(broker: Broker, lane: Priority) -> None:
    """The URL sets max_deliveries=3: after three deliveries without an ack the broker gives up, whatever
    the lane."""
    broker.publish("poison", lane)
    seen: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        msg = broker.receive(visibility_s=30, wait_s=0.5)
        if msg is None:
            if broker.stats().dead == 1:
                break
            continue
        seen.append(msg.job_id)
        broker.nack(msg)
    assert seen == ["poison"] * 3
    assert broker.take_dead(10) == ["poison"]


def test_stats_count_the_waiting_messages_of_each_lane(broker: Broker) -> None:
    broker.publish_many(["h1", "n1", "n2", "l1", "l2", "l3"], [HIGH, NORMAL, NORMAL, LOW, LOW, LOW])
    held = broker.receive(visibility_s=60, wait_s=5)
    assert held is not None and held.job_id == "h1"
    stats = broker.stats()
    if stats.waiting_by_priority is None:
        pytest.skip("this broker cannot tell the lanes' backlogs apart")
    assert dict(stats.waiting_by_priority) == {HIGH: 0, NORMAL: 2, LOW: 3}
    assert stats.ready + stats.delayed == 5
