"""The Dramatiq side: one no-op actor with Dramatiq's defaults, which are at-least-once (a message is
acked after the actor ran; an unacked one comes back). The worker runs
`dramatiq bench.dispatch.dramatiq_app:setup --processes 2 --threads 1 --queues Q` with FQB_BROKER_URL /
FQB_QUEUE / FQB_RECORD (and, for a result-storing run, FQB_RESULTS) set; the harness calls make() for the
same broker, queue and result backend.

On RabbitMQ publisher confirms are on (`confirm_delivery=True`), so a send returns once the broker has the
message, as framequeue's submit does. On Redis the namespace is the queue name, so cleanup finds every
key of the run.

With FQB_RESULTS (a Redis URL: Dramatiq's result backends are Redis and Memcached, on either broker) the
broker gets the Results middleware and the actor `store_results=True`: each run's return value is stored
under the message's key once it finished. Dramatiq writes no "started" state; that part of framequeue's
record has no counterpart here."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker

from bench.dispatch import record

ACTOR = "noop"


def make(broker_url: str, queue: str, results_url: str = "") -> tuple[dramatiq.Broker, dramatiq.Actor[[str], None]]:
    broker: dramatiq.Broker
    if broker_url.startswith("redis"):
        broker = RedisBroker(url=broker_url, namespace=queue)  # type: ignore[no-untyped-call]
    else:
        broker = RabbitmqBroker(url=broker_url, confirm_delivery=True)
    if not results_url:
        bare: dramatiq.Actor[[str], None] = dramatiq.actor(broker=broker, actor_name=ACTOR,
                                                            queue_name=queue)(record.noop)
        return broker, bare
    from dramatiq.results import Results
    from dramatiq.results.backends.redis import RedisBackend

    # keys named namespace:queue:actor:message id (not its md5, the default), so cleanup finds them by the queue name
    backend = RedisBackend(url=results_url, namespace=f"{queue}-results",  # type: ignore[no-untyped-call]
                           use_namespace_prefix_keys=True)
    broker.add_middleware(Results(backend=backend))  # type: ignore[no-untyped-call]
    storing: dramatiq.Actor[[str], None] = dramatiq.actor(broker=broker, actor_name=ACTOR, queue_name=queue,
                                                           store_results=True)(record.noop)
    return broker, storing


def setup() -> dramatiq.Broker:
    """The broker the `dramatiq` command runs (it calls this in the master and each worker process)."""
    broker, _ = make(os.environ["FQB_BROKER_URL"], os.environ["FQB_QUEUE"], os.environ.get("FQB_RESULTS", ""))
    dramatiq.set_broker(broker)
    return broker
