"""The Dramatiq side: one no-op actor with Dramatiq's defaults, which are at-least-once (a message is
acked after the actor ran; an unacked one comes back). The worker runs
`dramatiq bench.dispatch.dramatiq_app:setup --processes 2 --threads 1 --queues Q` with FQB_BROKER_URL /
FQB_QUEUE / FQB_RECORD set; the harness calls make() for the same broker and queue.

On RabbitMQ publisher confirms are on (`confirm_delivery=True`), so a send returns once the broker has the
message, as framequeue's submit does. On Redis the namespace is the queue name, so cleanup finds every
key of the run."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker

from bench.dispatch import record

ACTOR = "noop"


def make(broker_url: str, queue: str) -> tuple[dramatiq.Broker, dramatiq.Actor[[str], None]]:
    broker: dramatiq.Broker
    if broker_url.startswith("redis"):
        broker = RedisBroker(url=broker_url, namespace=queue)  # type: ignore[no-untyped-call]
    else:
        broker = RabbitmqBroker(url=broker_url, confirm_delivery=True)
    actor: dramatiq.Actor[[str], None] = dramatiq.actor(broker=broker, actor_name=ACTOR, queue_name=queue)(record.noop)
    return broker, actor


def setup() -> dramatiq.Broker:
    """The broker the `dramatiq` command runs (it calls this in the master and each worker process)."""
    broker, _ = make(os.environ["FQB_BROKER_URL"], os.environ["FQB_QUEUE"])
    dramatiq.set_broker(broker)
    return broker
