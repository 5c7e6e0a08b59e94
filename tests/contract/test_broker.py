"""The Broker contract, run against every broker backend (URLs in tests/contract/backends.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from framequeue.brokers.base import Broker, Message


def receive_until(broker: Broker, visibility_s: float, wait_s: float) -> Message | None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        msg = broker.receive(visibility_s=visibility_s, wait_s=min(0.5, max(0.05, deadline - time.monotonic())))
        if msg is not None:
            return msg
    return None


def test_publish_receive_ack_in_order(broker: Broker) -> None:
    for job_id in ("a", "b"):
        broker.publish(job_id)
    first = broker.receive(visibility_s=30, wait_s=2)
    assert first is not None and first.job_id == "a" and first.deliveries == 1
    broker.ack(first)
    second = broker.receive(visibility_s=30, wait_s=2)
    assert second is not None and second.job_id == "b"
    broker.ack(second)
    assert broker.receive(visibility_s=30, wait_s=0.2) is None


def test_stats_count_ready_and_in_flight(broker: Broker) -> None:
    broker.publish("a")
    broker.publish("b")
    time.sleep(0.3)
    stats = broker.stats()
    assert stats.ready == 2 and stats.in_flight == 0
    # None: the broker cannot tell without disturbing the message (RabbitMQ); the job store knows
    assert stats.oldest_ready_age_s is None or stats.oldest_ready_age_s >= 0.2
    msg = broker.receive(visibility_s=30, wait_s=2)
    assert msg is not None
    stats = broker.stats()
    assert (stats.ready, stats.in_flight) == (1, 1)
    broker.ack(msg)
    stats = broker.stats()
    assert (stats.ready, stats.in_flight) == (1, 0)


def test_receive_waits_for_a_publish(make_broker: Callable[[], Broker]) -> None:
    consumer, producer = make_broker(), make_broker()
    timer = threading.Timer(0.3, producer.publish, args=("late",))
    timer.start()
    started = time.monotonic()
    msg = consumer.receive(visibility_s=30, wait_s=5)
    timer.join()
    assert msg is not None and msg.job_id == "late"
    assert time.monotonic() - started < 3


def test_competing_consumers_each_get_a_message_once(make_broker: Callable[[], Broker]) -> None:
    producer = make_broker()
    for i in range(20):
        producer.publish(f"job-{i}")
    got: list[str] = []
    lock = threading.Lock()

    def consume() -> None:
        b = make_broker()
        while (msg := b.receive(visibility_s=30, wait_s=1)) is not None:
            with lock:
                got.append(msg.job_id)
            b.ack(msg)

    threads = [threading.Thread(target=consume) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(f"job-{i}" for i in range(20))


def test_an_unacked_message_comes_back(make_broker: Callable[[], Broker]) -> None:
    first = make_broker()
    first.publish("a")
    msg = first.receive(visibility_s=0.5, wait_s=2)
    assert msg is not None
    if first.redelivery == "connection":
        first.close()  # the consumer's connection ends without an ack (as when its process dies)
    other = make_broker()
    again = receive_until(other, visibility_s=30, wait_s=10)
    assert again is not None and again.job_id == "a" and again.deliveries == 2
    other.ack(again)
    assert receive_until(other, visibility_s=30, wait_s=1.5) is None


def test_extend_keeps_a_message_invisible(broker: Broker) -> None:
    if broker.redelivery == "connection":
        pytest.skip("redelivery follows the connection, not a visibility timeout")
    broker.publish("a")
    msg = broker.receive(visibility_s=1, wait_s=2)
    assert msg is not None
    for _ in range(3):
        time.sleep(0.5)
        broker.extend(msg, 1)
    assert broker.receive(visibility_s=30, wait_s=0.3) is None
    broker.ack(msg)


def test_nack_with_delay_counts_as_delayed(broker: Broker) -> None:
    broker.publish("a")
    msg = broker.receive(visibility_s=30, wait_s=2)
    assert msg is not None
    broker.nack(msg, delay_s=1.0)
    assert broker.receive(visibility_s=30, wait_s=0.3) is None
    assert broker.stats().delayed == 1
    again = receive_until(broker, visibility_s=30, wait_s=5)
    assert again is not None and again.job_id == "a"
    broker.ack(again)


def test_a_message_delivered_too_often_is_dead_lettered(broker: Broker) -> None:
    """The URL sets max_deliveries=3: after three deliveries without an ack the broker gives up."""
    broker.publish("poison")
    broker.publish("fine")
    seen: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        msg = broker.receive(visibility_s=30, wait_s=0.5)
        if msg is None:
            if broker.stats().dead == 1:
                break
            continue
        seen.append(msg.job_id)
        if msg.job_id == "poison":
            broker.nack(msg)
        else:
            broker.ack(msg)
    assert seen.count("poison") == 3 and seen.count("fine") == 1
    assert broker.stats().dead == 1
    assert broker.take_dead(10) == ["poison"]
    assert broker.take_dead(10) == [] and broker.stats().dead == 0
