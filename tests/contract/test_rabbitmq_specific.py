"""What the Broker contract cannot see on RabbitMQ: the queue's arguments, publisher confirms, prefetch, the
heartbeat handing a paused consumer's message to another one, and the delivery limit across the delay queue
and across crashed consumers. The queues each test declares are deleted afterwards."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from framequeue.brokers.base import Broker, Message
from framequeue.brokers.rabbitmq import CONSUMER_TIMEOUT_MS, RabbitMQBroker
from framequeue.brokers.urls import parse_broker_url
from framequeue.errors import InvalidParams, ServiceUnavailable
from tests.contract.backends import AMQP_URL, BROKERS, with_options

#: the longest job framequeue allows (max_runtime_s ceiling), in ms
MAX_RUNTIME_MS = 3600 * 1000


class Rabbit:
    """Opens brokers on one fresh queue (max_deliveries=3), closes them, then deletes the queue's topology."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.queue = parse_broker_url(url).queue
        self.opened: list[RabbitMQBroker] = []

    def open(self, **options: object) -> RabbitMQBroker:
        broker = RabbitMQBroker(with_options(self.url, max_deliveries=3, **options))
        self.opened.append(broker)
        return broker

    def cleanup(self) -> None:
        for broker in self.opened:
            broker.close()
        q = self.queue
        lanes = [q, f"{q}.high", f"{q}.low"]
        asyncio.run(_delete_queues([*lanes, *(f"{w}.delay" for w in lanes), f"{q}.dead"]))


async def _delete_queues(names: list[str]) -> None:
    import aio_pika

    connection = await aio_pika.connect(AMQP_URL, timeout=10)
    async with connection:
        channel = await connection.channel()
        for name in names:
            await channel.queue_delete(name)


@pytest.fixture
def rabbit(tmp_path: Path) -> Iterator[Rabbit]:
    r = Rabbit(BROKERS["rabbitmq"](tmp_path))
    yield r
    r.cleanup()


def ctl(*args: str) -> list[dict[str, Any]]:
    """rabbitmqctl's view of the server, for what AMQP does not report (queue arguments, channel modes)."""
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not on PATH (RabbitMQ runs elsewhere)")
    done = subprocess.run(["rabbitmqctl", *args, "--formatter", "json", "-q"], capture_output=True, text=True,
                          timeout=30, check=False)
    if done.returncode != 0:
        pytest.skip(f"rabbitmqctl cannot inspect this server: {done.stderr.strip()[:200]}")
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def receive_until(broker: Broker, wait_s: float) -> Message | None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        msg = broker.receive(visibility_s=30, wait_s=min(0.5, max(0.05, deadline - time.monotonic())))
        if msg is not None:
            return msg
    return None


def test_queues_are_quorum_with_delivery_limit_dead_letters_and_consumer_timeout(rabbit: Rabbit) -> None:
    rabbit.open()
    q = rabbit.queue
    rows = {r["name"]: r for r in ctl("list_queues", "name", "type", "arguments") if r["name"].startswith(q)}
    args = {name: {key: value for key, _type, value in rows[name]["arguments"]} for name in rows}
    lanes = [q, f"{q}.high", f"{q}.low"]
    assert {name: rows[name]["type"] for name in rows} == {
        name: "quorum" for name in [*lanes, *(f"{w}.delay" for w in lanes), f"{q}.dead"]
    }
    # max_deliveries=3: RabbitMQ dead-letters a message returned more than x-delivery-limit times
    assert args[q]["x-delivery-limit"] == 2
    assert (args[q]["x-dead-letter-exchange"], args[q]["x-dead-letter-routing-key"]) == ("", f"{q}.dead")
    assert args[q]["x-dead-letter-strategy"] == "at-least-once"
    assert args[q]["x-consumer-timeout"] == CONSUMER_TIMEOUT_MS > MAX_RUNTIME_MS
    assert args[f"{q}.delay"]["x-dead-letter-routing-key"] == q
    assert args[f"{q}.delay"]["x-dead-letter-strategy"] == "at-least-once"
    # the lanes: high like normal; low's messages expire (low_max_wait_s) into the normal queue
    assert args[f"{q}.high"]["x-dead-letter-routing-key"] == f"{q}.dead"
    assert args[f"{q}.low"]["x-dead-letter-routing-key"] == q
    assert args[f"{q}.high.delay"]["x-dead-letter-routing-key"] == f"{q}.high"
    assert args[f"{q}.low.delay"]["x-dead-letter-routing-key"] == f"{q}.low"


def test_publisher_confirms_and_prefetch_one(rabbit: Rabbit) -> None:
    producer, consumer = rabbit.open(), rabbit.open()
    producer.publish("a")
    # a confirmed publish is in the queue when publish() returns, as another connection sees at once
    assert consumer.stats().ready == 1
    msg = consumer.receive(visibility_s=30, wait_s=2)
    assert msg is not None
    mine = [
        c["pid"] for c in ctl("list_connections", "pid", "client_properties")
        if ["connection_name", "longstr", f"framequeue:{rabbit.queue}"] in c["client_properties"]
    ]
    channels = [c for c in ctl("list_channels", "connection", "confirm", "prefetch_count", "messages_unacknowledged")
                if c["connection"] in mine]
    publishing = [c for c in channels if c["confirm"]]
    consuming = [c for c in channels if not c["confirm"]]
    assert len(publishing) == len(consuming) == 2  # one of each per broker
    assert {c["prefetch_count"] for c in consuming} == {1}
    assert sorted(c["messages_unacknowledged"] for c in consuming) == [0, 1]
    consumer.ack(msg)


def test_a_paused_consumer_loses_its_message_to_another_and_recovers(rabbit: Rabbit) -> None:
    paused, other = rabbit.open(heartbeat=1), rabbit.open()
    paused.publish("a")
    msg = paused.receive(visibility_s=30, wait_s=2)
    assert msg is not None and msg.deliveries == 1
    # freeze the client as a SIGSTOPped process would be: no heartbeats, so RabbitMQ drops its connection
    paused._loop.loop.call_soon_threadsafe(time.sleep, 4)
    again = receive_until(other, wait_s=10)
    assert again is not None and again.job_id == "a" and again.deliveries == 2
    paused.ack(msg)  # stale (its connection is gone): a no-op, not an error
    other.ack(again)
    paused.publish("b")  # reconnects by itself
    late = receive_until(paused, wait_s=5)
    assert late is not None and late.job_id == "b" and late.deliveries == 1
    paused.ack(late)
    assert paused.stats().in_flight == 0


def test_the_delivery_count_survives_the_delay_queue_and_the_limit_holds(rabbit: Rabbit) -> None:
    broker = rabbit.open()
    broker.publish("a")
    for expected in (1, 2, 3):
        msg = receive_until(broker, wait_s=5)
        assert msg is not None and msg.deliveries == expected
        broker.nack(msg, delay_s=0.2)
    # the third delivery was the last one max_deliveries=3 allows: dead, not delayed
    assert broker.receive(visibility_s=30, wait_s=0.5) is None
    stats = broker.stats()
    assert (stats.ready, stats.delayed, stats.dead) == (0, 0, 1)
    assert broker.take_dead(10) == ["a"]


def test_rabbitmq_dead_letters_a_message_whose_consumers_keep_dying(rabbit: Rabbit) -> None:
    producer = rabbit.open()
    producer.publish("poison")
    for expected in (1, 2, 3):
        crashing = rabbit.open()
        msg = receive_until(crashing, wait_s=5)
        assert msg is not None and msg.deliveries == expected
        crashing.close()  # no ack: the quorum queue counts the return
    deadline = time.monotonic() + 5
    while producer.stats().dead == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert producer.receive(visibility_s=30, wait_s=0.3) is None
    assert producer.take_dead(10) == ["poison"]


def test_another_max_deliveries_on_an_existing_queue_is_refused(rabbit: Rabbit) -> None:
    rabbit.open()
    with pytest.raises(InvalidParams, match="x-delivery-limit"):
        RabbitMQBroker(with_options(rabbit.url, max_deliveries=5))


def test_an_unreachable_server_is_unavailable_and_the_password_stays_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ServiceUnavailable) as caught:
        RabbitMQBroker("amqp://guest:hunter2-secret@127.0.0.1:1/?queue=fq_unreachable")
    assert "hunter2-secret" not in str(caught.value) and "hunter2-secret" not in caplog.text


@pytest.mark.parametrize("heartbeat", ["0", "soon"])
def test_a_bad_heartbeat_option_is_refused(heartbeat: str) -> None:
    with pytest.raises(InvalidParams, match="heartbeat"):
        RabbitMQBroker(f"amqp://guest:guest@127.0.0.1:1/?queue=fq_bad&heartbeat={heartbeat}")
