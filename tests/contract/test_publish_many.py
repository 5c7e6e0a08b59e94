"""The batch publish's contract (Broker.publish_many), run against every broker backend: every id of a batch
is received, exactly once, by competing consumers."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from framequeue.brokers.base import Broker

BATCH = 200


def test_every_id_published_in_one_call_is_received_exactly_once(make_broker: Callable[[], Broker]) -> None:
    producer = make_broker()
    consumers = [make_broker(), make_broker()]
    ids = [f"job-{i:03d}" for i in range(BATCH)]
    producer.publish_many(ids)
    producer.publish_many([])  # nothing to send is not an error
    got: Counter[str] = Counter()
    lock = threading.Lock()

    def drain(broker: Broker) -> None:
        while True:
            msg = broker.receive(visibility_s=60, wait_s=1.0)
            if msg is None:
                return
            with lock:
                got[msg.job_id] += 1
            broker.ack(msg)

    threads = [threading.Thread(target=drain, args=(c,)) for c in consumers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(got) == ids
    assert set(got.values()) == {1}
    stats = producer.stats()
    assert (stats.ready, stats.in_flight) == (0, 0)


def test_a_batch_keeps_its_order_for_one_consumer(broker: Broker) -> None:
    broker.publish("before")
    broker.publish_many(["b1", "b2", "b3"])
    broker.publish("after")
    seen = []
    for _ in range(5):
        msg = broker.receive(visibility_s=60, wait_s=2)
        assert msg is not None
        seen.append(msg.job_id)
        broker.ack(msg)
    assert seen == ["before", "b1", "b2", "b3", "after"]
