"""The Broker port (base.py) and its backends, one module each, opened by URL scheme."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from framequeue.brokers.base import Broker
from framequeue.config import Backend, backend_class

if TYPE_CHECKING:
    from framequeue.brokers.memory import MemoryBroker
    from framequeue.brokers.nats import NatsBroker
    from framequeue.brokers.postgres import PostgresBroker
    from framequeue.brokers.rabbitmq import RabbitMQBroker
    from framequeue.brokers.redis import RedisBroker
    from framequeue.brokers.sqlite import SQLiteBroker

__all__ = ["SCHEMES", "open_broker"]

SCHEMES: Final[Mapping[str, Backend]] = {
    "sqlite": Backend("framequeue.brokers.sqlite", "SQLiteBroker"),
    "postgresql": Backend("framequeue.brokers.postgres", "PostgresBroker", "postgres"),
    "postgres": Backend("framequeue.brokers.postgres", "PostgresBroker", "postgres"),
    "redis": Backend("framequeue.brokers.redis", "RedisBroker", "redis"),
    "rediss": Backend("framequeue.brokers.redis", "RedisBroker", "redis"),
    "amqp": Backend("framequeue.brokers.rabbitmq", "RabbitMQBroker", "rabbitmq"),
    "amqps": Backend("framequeue.brokers.rabbitmq", "RabbitMQBroker", "rabbitmq"),
    "nats": Backend("framequeue.brokers.nats", "NatsBroker", "nats"),
    "memory": Backend("framequeue.brokers.memory", "MemoryBroker"),
}

if TYPE_CHECKING:  # mypy checks that each backend, built from a URL, is a Broker
    _OPENERS: tuple[Callable[[str], Broker], ...] = (
        SQLiteBroker, PostgresBroker, RedisBroker, RabbitMQBroker, NatsBroker, MemoryBroker,
    )


def open_broker(url: str, low_max_wait_s: float | None = None, lanes: str = "") -> Broker:
    """The broker `url` names; InvalidParams for an unknown scheme or a missing client library.
    `low_max_wait_s` (the deployment's FQ_LOW_MAX_WAIT_S) and `lanes` (a worker's FQ_LANES, e.g. "high" or
    "normal,low": the lanes its receive takes from) apply unless the URL names its own."""
    query = urlsplit(url).query
    if low_max_wait_s is not None and "low_max_wait_s=" not in query:
        url = f"{url}{'&' if '?' in url else '?'}low_max_wait_s={low_max_wait_s:g}"
    if lanes and "lanes=" not in query:
        url = f"{url}{'&' if '?' in url else '?'}lanes={lanes}"
    broker: Broker = backend_class("broker", SCHEMES, url)(url)
    return broker
