"""What the Broker contract cannot see on NATS JetStream: the stream and consumer settings, AckProgress
against a short AckWait, dead letters from the max-deliveries advisory and from the sweep when nobody
heard it, and stale acks after a redelivery (nats-server#4786). The streams each test creates are
deleted afterwards."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js import api

from framequeue.brokers.base import Broker, Message
from framequeue.brokers.nats import NatsBroker
from framequeue.brokers.nats.streams import CONSUMER
from framequeue.brokers.urls import parse_broker_url
from framequeue.errors import InvalidParams, ServiceUnavailable
from tests.contract.backends import BROKERS, NATS_URL, with_options

T = TypeVar("T")


class Queue:
    """Opens brokers on one fresh queue (max_deliveries=3 unless told), closes them, then deletes its streams;
    `raw` runs a coroutine with a plain nats-py JetStream context, for what the broker does not expose."""

    def __init__(self, url: str) -> None:
        self.url = url
        name = parse_broker_url(url).queue
        self.stream, self.subject, self.dead_stream = f"FQ_{name}", f"fq.{name}.jobs", f"FQDEAD_{name}"
        self.opened: list[NatsBroker] = []

    def open(self, **options: object) -> NatsBroker:
        broker = NatsBroker(with_options(self.url, **{"max_deliveries": 3, **options}))
        self.opened.append(broker)
        return broker

    def raw(self, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        async def main() -> T:
            nc = await nats.connect(NATS_URL)
            try:
                return await work(nc.jetstream())
            finally:
                await nc.close()

        return asyncio.run(main())

    def cleanup(self) -> None:
        for broker in self.opened:
            broker.close()

        async def drop(js: Any) -> None:
            for stream in (self.stream, self.dead_stream):
                with suppress(nats.js.errors.NotFoundError):
                    await js.delete_stream(stream)

        self.raw(drop)


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[Queue]:
    q = Queue(BROKERS["nats"](tmp_path))
    yield q
    q.cleanup()


def receive_until(broker: Broker, wait_s: float, visibility_s: float = 30) -> Message | None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        msg = broker.receive(visibility_s=visibility_s, wait_s=min(0.5, max(0.05, deadline - time.monotonic())))
        if msg is not None:
            return msg
    return None


def wait_until(check: Callable[[], bool], wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def state(queue: Queue) -> tuple[int, int, int]:
    """(messages in the work stream, consumer's num_pending, consumer's num_ack_pending)."""

    async def look(js: Any) -> tuple[int, int, int]:
        stream = await js.stream_info(queue.stream)
        consumer = await js.consumer_info(queue.stream, CONSUMER)
        return stream.state.messages, consumer.num_pending, consumer.num_ack_pending

    return queue.raw(look)


def test_streams_and_consumer_are_set_up_idempotently(queue: Queue) -> None:
    queue.open(ack_wait_s=7)
    queue.open(ack_wait_s=7)  # a second instance of the queue changes nothing

    async def look(js: Any) -> tuple[api.StreamInfo, api.StreamInfo, api.ConsumerInfo]:
        return (await js.stream_info(queue.stream), await js.stream_info(queue.dead_stream),
                await js.consumer_info(queue.stream, CONSUMER))

    work, dead, consumer = queue.raw(look)
    assert work.config.retention == api.RetentionPolicy.WORK_QUEUE and work.config.storage == api.StorageType.FILE
    # one subject per lane: high, normal (the queue's subject before lanes), low
    name = queue.subject.split(".")[1]
    assert work.config.subjects == [f"fq.{name}.high", queue.subject, f"fq.{name}.low"]
    assert dead.config.retention == api.RetentionPolicy.LIMITS and dead.config.storage == api.StorageType.FILE
    assert consumer.config.ack_policy == api.AckPolicy.EXPLICIT
    assert (consumer.config.ack_wait, consumer.config.max_deliver) == (7, 3)
    queue.open(ack_wait_s=9, max_deliveries=5)  # the last instance opened sets the consumer
    _, _, consumer = queue.raw(look)
    assert (consumer.config.ack_wait, consumer.config.max_deliver) == (9, 5)


def test_url_options_are_checked_and_a_missing_server_is_unavailable(queue: Queue) -> None:
    with pytest.raises(InvalidParams, match="ack_wiat_s"):
        NatsBroker(with_options(queue.url, ack_wiat_s=1))
    with pytest.raises(InvalidParams, match="ack_wait_s"):
        NatsBroker(with_options(queue.url, ack_wait_s=0))
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        NatsBroker("nats://127.0.0.1:1?queue=fq_nobody&connect_timeout_s=0.5")
    assert time.monotonic() - started < 3
    broker = queue.open()
    broker.close()
    with pytest.raises(ServiceUnavailable):
        broker.publish("late")
    assert broker.receive(visibility_s=30, wait_s=0.1) is None


def test_in_progress_keeps_a_message_past_ack_wait(queue: Queue) -> None:
    """AckWait is 1 s; extend (AckProgress) every 0.5 s for 2.5 s keeps it from every other consumer."""
    holder, other = queue.open(ack_wait_s=1), queue.open(ack_wait_s=1)
    holder.publish("a")
    msg = holder.receive(visibility_s=1, wait_s=2)
    assert msg is not None
    for _ in range(5):
        time.sleep(0.5)
        holder.extend(msg, 1)
    assert other.receive(visibility_s=30, wait_s=0.3) is None
    holder.ack(msg)
    assert state(queue) == (0, 0, 0)


def test_a_visibility_longer_than_ack_wait_is_kept_by_the_broker(queue: Queue) -> None:
    """With no extend at all, the receiving instance refreshes AckWait (1 s) until the visibility (2.5 s) ends,
    then hands the message back at once."""
    holder, other = queue.open(ack_wait_s=1), queue.open(ack_wait_s=1)
    holder.publish("a")
    started = time.monotonic()
    assert holder.receive(visibility_s=2.5, wait_s=2) is not None
    assert other.receive(visibility_s=30, wait_s=1.8) is None
    again = receive_until(other, 3)
    assert again is not None and again.deliveries == 2
    assert 2.3 < time.monotonic() - started < 4
    other.ack(again)


def test_max_deliveries_dead_letters_through_the_advisory(queue: Queue) -> None:
    """Two consumers die holding the message (max_deliveries=2, AckWait 1 s). The server notices it has
    run out of deliveries when it would deliver it again, i.e. on the next pull: a third instance pulls,
    gets nothing, and moves the job id to the dead store from the advisory."""
    first = queue.open(ack_wait_s=1, max_deliveries=2)
    first.publish("poison")
    assert first.receive(visibility_s=30, wait_s=2) is not None
    first.close()  # dies holding it: no ack, no nak; AckWait brings it back
    second = queue.open(ack_wait_s=1, max_deliveries=2)
    msg = receive_until(second, 5)
    assert msg is not None and (msg.job_id, msg.deliveries) == ("poison", 2)
    second.close()
    listener = queue.open(ack_wait_s=1, max_deliveries=2)
    time.sleep(1.2)  # AckWait runs out with nobody pulling: the server has not given up yet
    assert state(queue) == (1, 0, 1) and listener.stats().dead == 0
    assert listener.receive(visibility_s=30, wait_s=0.3) is None
    assert wait_until(lambda: listener.stats().dead == 1, 2)
    assert state(queue) == (0, 0, 0)
    assert listener.take_dead(10) == ["poison"]
    assert listener.take_dead(10) == [] and listener.stats().dead == 0


def test_an_exhausted_message_nobody_heard_of_is_swept(queue: Queue) -> None:
    """The advisory is published while no broker instance is connected: the message stays in the work
    stream, neither pending nor in flight, until the next instance's sweep dead-letters it."""
    queue.open(max_deliveries=2).publish("poison")
    for broker in queue.opened:
        broker.close()

    async def exhaust(js: Any) -> None:
        sub = await js.pull_subscribe_bind(CONSUMER, queue.stream)
        for _ in range(2):
            (msg,) = await sub.fetch(1, timeout=2)
            await msg.nak()
        with pytest.raises(nats.errors.TimeoutError):
            await sub.fetch(1, timeout=0.3)  # the server gives up here, publishing an advisory nobody hears

    queue.raw(exhaust)
    assert state(queue) == (1, 0, 0)
    broker = queue.open(max_deliveries=2)
    assert broker.stats().dead == 1 and state(queue) == (0, 0, 0)
    assert broker.take_dead(10) == ["poison"]


def test_the_server_accepts_a_stale_ack_and_drops_the_new_holders_message(queue: Queue) -> None:
    """nats-server#4786, with the plain client: the first holder's AckWait ran out and the message went to
    a second holder; the first holder's ack is still answered and deletes the message the second holds.
    This is why NatsBroker does not send an ack whose AckWait has run out."""
    queue.open(ack_wait_s=1).close()

    async def race(js: Any) -> tuple[int, int, bytes, int]:
        a = await js.pull_subscribe_bind(CONSUMER, queue.stream)
        b = await js.pull_subscribe_bind(CONSUMER, queue.stream)
        await js.publish(queue.subject, b"a")
        (stale,) = await a.fetch(1, timeout=2)
        await asyncio.sleep(1.3)
        (current,) = await b.fetch(1, timeout=3)
        answer = await stale.ack_sync()
        left = (await js.stream_info(queue.stream)).state.messages
        await current.ack_sync()  # answered too: the second holder cannot tell its message is gone
        return current.metadata.num_delivered, left, answer.data, stale.metadata.num_delivered

    deliveries, left, answer, stale_deliveries = queue.raw(race)
    assert (stale_deliveries, deliveries, answer, left) == (1, 2, b"", 0)


def test_a_stale_ack_after_a_redelivery_is_not_sent(queue: Queue) -> None:
    """The holder's process freezes (its loop blocked, as under SIGSTOP) past AckWait; the message goes to
    another consumer; the holder wakes and acks: nothing is sent, the new delivery stays in flight."""
    holder, other = queue.open(ack_wait_s=1), queue.open(ack_wait_s=1)
    holder.publish("a")
    stale = holder.receive(visibility_s=30, wait_s=2)
    assert stale is not None
    thawed = threading.Event()

    def freeze() -> None:
        time.sleep(1.8)
        thawed.set()

    holder._aio.loop.call_soon_threadsafe(freeze)
    current = receive_until(other, 3)
    assert current is not None and current.deliveries == 2
    assert thawed.wait(3)
    holder.ack(stale)
    holder.extend(stale, 30)
    holder.nack(stale)
    assert state(queue) == (1, 0, 1)
    time.sleep(0.3)
    assert other.receive(visibility_s=30, wait_s=0.2) is None
    other.ack(current)
    assert state(queue) == (0, 0, 0)


def test_delayed_is_known_to_the_instance_that_nacked(queue: Queue) -> None:
    """JetStream counts a nak with a delay as unacked: only the instance that sent it reports it delayed."""
    nacker, other = queue.open(), queue.open()
    nacker.publish("a")
    msg = nacker.receive(visibility_s=30, wait_s=2)
    assert msg is not None
    nacker.nack(msg, delay_s=2)
    mine, theirs = nacker.stats(), other.stats()
    assert (mine.ready, mine.in_flight, mine.delayed) == (0, 0, 1)
    assert (theirs.ready, theirs.in_flight, theirs.delayed) == (0, 1, 0)
