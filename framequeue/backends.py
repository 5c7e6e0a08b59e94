"""Backends are chosen by URL, never by code changes. Each opener imports its backend lazily, so a
missing optional client only matters to the deployments that use it."""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import urlsplit

from framequeue.brokers.base import Broker
from framequeue.errors import InvalidParams
from framequeue.jobstore import JobStore
from framequeue.notify.events import PayloadRenderer
from framequeue.storage.base import ObjectStore

#: scheme -> (module, class, the extra that installs its client)
JOB_STORES: dict[str, tuple[str, str, str]] = {
    "sqlite": ("framequeue.jobstore.sqlite", "SQLiteJobStore", ""),
    "postgresql": ("framequeue.jobstore.postgres", "PostgresJobStore", "postgres"),
    "postgres": ("framequeue.jobstore.postgres", "PostgresJobStore", "postgres"),
    "memory": ("framequeue.jobstore.memory", "MemoryJobStore", ""),
}
BROKERS: dict[str, tuple[str, str, str]] = {
    "sqlite": ("framequeue.brokers.sqlite", "SQLiteBroker", ""),
    "postgresql": ("framequeue.brokers.postgres", "PostgresBroker", "postgres"),
    "postgres": ("framequeue.brokers.postgres", "PostgresBroker", "postgres"),
    "redis": ("framequeue.brokers.redis", "RedisBroker", "redis"),
    "rediss": ("framequeue.brokers.redis", "RedisBroker", "redis"),
    "amqp": ("framequeue.brokers.rabbitmq", "RabbitMQBroker", "rabbitmq"),
    "amqps": ("framequeue.brokers.rabbitmq", "RabbitMQBroker", "rabbitmq"),
    "nats": ("framequeue.brokers.nats", "NatsBroker", "nats"),
    "memory": ("framequeue.brokers.memory", "MemoryBroker", ""),
}
STORAGES: dict[str, tuple[str, str, str]] = {
    "file": ("framequeue.storage.local", "LocalObjectStore", ""),
    "memory": ("framequeue.storage.memory", "MemoryObjectStore", ""),
    "s3": ("framequeue.storage.s3", "S3ObjectStore", "s3"),
}


def _backend_class(kind: str, table: dict[str, tuple[str, str, str]], url: str) -> Any:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in table:
        supported = ", ".join(f"{s}://" for s in table)
        raise InvalidParams(f"no {kind} for {scheme or 'scheme-less'} URLs (supported: {supported})")
    module, cls, extra = table[scheme]
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        hint = f"pip install 'framequeue[{extra}]'" if extra else "reinstall framequeue"
        raise InvalidParams(f"the {scheme}:// {kind} needs packages that are missing ({exc.name}): {hint}") from exc


def open_jobstore(url: str, render: PayloadRenderer) -> JobStore:
    store: JobStore = _backend_class("job store", JOB_STORES, url)(url, render)
    return store


def open_broker(url: str) -> Broker:
    broker: Broker = _backend_class("broker", BROKERS, url)(url)
    return broker


def open_storage(url: str) -> ObjectStore:
    cls = _backend_class("object store", STORAGES, url)
    store: ObjectStore = cls.from_url(url)
    return store

