"""The Broker contract, run against every broker backend."""

from __future__ import annotations

import time

from framequeue.brokers.base import Broker


def test_publish_receive_ack(broker: Broker) -> None:
    broker.publish("a")
    broker.publish("b")
    first = broker.receive(visibility_s=30, wait_s=1)
    assert first is not None and first.job_id == "a" and first.deliveries == 1
    assert broker.stats().ready == 1 and broker.stats().in_flight == 1
    broker.ack(first)
    second = broker.receive(visibility_s=30, wait_s=1)
    assert second is not None and second.job_id == "b"
    broker.ack(second)
    assert broker.receive(visibility_s=30, wait_s=0.1) is None
    assert broker.stats().ready == 0 and broker.stats().in_flight == 0


def test_an_unacked_message_comes_back_after_its_visibility(broker: Broker) -> None:
    broker.publish("a")
    msg = broker.receive(visibility_s=0.3, wait_s=1)
    assert msg is not None
    assert broker.receive(visibility_s=0.3, wait_s=0.1) is None
    again = broker.receive(visibility_s=30, wait_s=2)
    assert again is not None and again.job_id == "a" and again.deliveries == 2
    # the first consumer's ack is stale: the redelivered message stays
    broker.ack(msg)
    assert broker.stats().in_flight == 1
    broker.ack(again)
    assert broker.stats().in_flight == 0


def test_extend_keeps_a_message_invisible(broker: Broker) -> None:
    broker.publish("a")
    msg = broker.receive(visibility_s=0.3, wait_s=1)
    assert msg is not None
    broker.extend(msg, 30)
    time.sleep(0.5)
    assert broker.receive(visibility_s=30, wait_s=0.1) is None


def test_nack_with_delay(broker: Broker) -> None:
    broker.publish("a")
    msg = broker.receive(visibility_s=30, wait_s=1)
    assert msg is not None
    broker.nack(msg, delay_s=0.3)
    assert broker.receive(visibility_s=30, wait_s=0.05) is None
    again = broker.receive(visibility_s=30, wait_s=2)
    assert again is not None and again.job_id == "a"
