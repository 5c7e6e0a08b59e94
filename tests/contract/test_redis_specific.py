"""What only the Redis Streams broker must prove: no server-side lease (a dead consumer's delivery is
reclaimed), no trimming of pending work, receipts that go stale when a delivery is reclaimed."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from framequeue.brokers.base import Message
from framequeue.brokers.redis import RedisBroker
from framequeue.errors import ServiceUnavailable
from tests.contract.backends import REDIS_URL, require_service, with_options


@pytest.fixture
def queue() -> Iterator[str]:
    require_service("redis")
    name = f"fq_{uuid.uuid4().hex[:12]}"
    yield name
    raw = redis.Redis.from_url(REDIS_URL)
    raw.delete(*(f"fq:{{{name}}}:{k}" for k in ("stream", "deadline", "delayed", "dead")))
    raw.close()


@pytest.fixture
def raw() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def make_broker(queue: str) -> Iterator[Callable[[], RedisBroker]]:
    opened: list[RedisBroker] = []

    def make() -> RedisBroker:
        b = RedisBroker(with_options(REDIS_URL, queue=queue, max_deliveries=3))
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.close()


def stream(queue: str) -> str:
    return f"fq:{{{queue}}}:stream"


def entry_id(message: Message) -> str:
    return message.receipt.split("|", 1)[0]


def test_a_dead_consumers_delivery_is_reclaimed_after_its_visibility(
    make_broker: Callable[[], RedisBroker], queue: str, raw: redis.Redis
) -> None:
    dying, survivor = make_broker(), make_broker()
    dying.publish("job-1")
    held = dying.receive(visibility_s=1.0, wait_s=2)
    assert held is not None and held.deliveries == 1
    dying.close()  # no ack, no extend: as a killed process
    assert survivor.receive(visibility_s=30, wait_s=0.3) is None  # its visibility still holds
    started = time.monotonic()
    again = survivor.receive(visibility_s=30, wait_s=5)
    assert again is not None and again.job_id == "job-1" and again.deliveries == 2
    assert time.monotonic() - started < 2.5
    [pending] = raw.xpending_range(stream(queue), "fq", "-", "+", 10)
    assert pending["message_id"] == entry_id(held) == entry_id(again)
    assert pending["times_delivered"] == 2 and pending["consumer"] == again.receipt.split("|", 2)[2]
    survivor.ack(again)
    assert raw.xlen(stream(queue)) == 0 and survivor.stats().in_flight == 0


def test_pending_entries_are_never_trimmed(
    make_broker: Callable[[], RedisBroker], queue: str, raw: redis.Redis
) -> None:
    holder, worker = make_broker(), make_broker()
    for i in range(300):
        holder.publish(f"job-{i}")
    held = holder.receive(visibility_s=2, wait_s=2)
    assert held is not None and held.job_id == "job-0"
    done = 0
    while (msg := worker.receive(visibility_s=30, wait_s=0.2)) is not None and msg.job_id != "job-0":
        worker.ack(msg)
        done += 1
    assert done == 299
    # acked entries are deleted one by one; the unacked one is still in the stream, with its job id
    assert raw.xlen(stream(queue)) == 1
    assert raw.xrange(stream(queue)) == [(entry_id(held), {"job": "job-0"})]
    back = msg or worker.receive(visibility_s=30, wait_s=4)
    assert back is not None and back.job_id == "job-0" and back.deliveries == 2
    worker.ack(back)
    assert raw.xlen(stream(queue)) == 0


def test_a_stale_receipt_does_not_touch_the_new_holders_delivery(
    make_broker: Callable[[], RedisBroker], queue: str, raw: redis.Redis
) -> None:
    paused, other = make_broker(), make_broker()
    paused.publish("job-1")
    old = paused.receive(visibility_s=0.3, wait_s=2)
    assert old is not None
    new = other.receive(visibility_s=30, wait_s=3)
    assert new is not None and new.job_id == "job-1" and new.deliveries == 2
    # the paused consumer wakes up and goes on with its old receipt: none of it may count
    paused.extend(old, 60)
    paused.ack(old)
    paused.nack(old)
    paused.nack(old, delay_s=0.1)
    stats = other.stats()
    assert (stats.ready, stats.in_flight, stats.delayed) == (0, 1, 0)
    [pending] = raw.xpending_range(stream(queue), "fq", "-", "+", 10)
    assert pending["consumer"] == new.receipt.split("|", 2)[2] and pending["times_delivered"] == 2
    other.extend(new, 30)  # the holder's own receipt stays good across extends
    other.ack(new)
    assert other.stats().in_flight == 0 and raw.xlen(stream(queue)) == 0


def test_delayed_retries_keep_their_delivery_count(make_broker: Callable[[], RedisBroker]) -> None:
    broker = make_broker()
    broker.publish("poison")
    seen = []
    while (msg := broker.receive(visibility_s=30, wait_s=1)) is not None:
        seen.append(msg.deliveries)
        broker.nack(msg, delay_s=0.05)
    assert seen == [1, 2, 3]
    assert broker.stats().dead == 1 and broker.take_dead(10) == ["poison"]


def test_a_vanished_stream_is_recreated(make_broker: Callable[[], RedisBroker], queue: str, raw: redis.Redis) -> None:
    broker = make_broker()
    broker.publish("a")
    assert broker.stats().ready == 1
    raw.delete(stream(queue))  # as a Redis restart without persistence: the group goes too
    broker.publish("b")
    msg = broker.receive(visibility_s=30, wait_s=2)
    assert msg is not None and msg.job_id == "b"
    broker.ack(msg)


def test_close_ends_a_blocked_receive(make_broker: Callable[[], RedisBroker]) -> None:
    broker = make_broker()
    got: list[Message | None] = []
    reader = threading.Thread(target=lambda: got.append(broker.receive(visibility_s=30, wait_s=10)))
    reader.start()
    time.sleep(0.3)
    started = time.monotonic()
    broker.close()
    reader.join(timeout=5)
    assert got == [None] and time.monotonic() - started < 2
    with pytest.raises(ServiceUnavailable):
        broker.publish("late")


def test_an_unreachable_redis_is_service_unavailable() -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0?queue=fq_nowhere")
    try:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as caught:
            broker.publish("a")
        assert time.monotonic() - started < 3 and "127.0.0.1:1" in str(caught.value)
    finally:
        broker.close()
