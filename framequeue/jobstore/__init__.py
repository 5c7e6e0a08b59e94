"""The job store port (framequeue.jobstore.ports) and its backends, one package each, opened by URL scheme:
`sqlite`, `postgres` (both carry out the rules written once in `sql`, through a small dialect) and `memory`.
Each backend package checks, under TYPE_CHECKING, that its store is a JobStore."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from framequeue.config import Backend, backend_class
from framequeue.jobstore.ports import (
    ApiKeyStore,
    DeliveryStore,
    EndpointStore,
    JobStateStore,
    JobStore,
    ModelEndpointStore,
    OutboxStore,
    RetentionStore,
    SegmentStore,
)
from framequeue.notify.events import PayloadRenderer

__all__ = [
    "SCHEMES",
    "ApiKeyStore",
    "DeliveryStore",
    "EndpointStore",
    "JobStateStore",
    "JobStore",
    "ModelEndpointStore",
    "OutboxStore",
    "RetentionStore",
    "SegmentStore",
    "open_jobstore",
]

SCHEMES: Final[Mapping[str, Backend]] = {
    "sqlite": Backend("framequeue.jobstore.sqlite", "SQLiteJobStore"),
    "postgresql": Backend("framequeue.jobstore.postgres", "PostgresJobStore", "postgres"),
    "postgres": Backend("framequeue.jobstore.postgres", "PostgresJobStore", "postgres"),
    "memory": Backend("framequeue.jobstore.memory", "MemoryJobStore"),
}


def open_jobstore(url: str, render: PayloadRenderer) -> JobStore:
    """The job store `url` names; InvalidParams for an unknown scheme or a missing client library."""
    store: JobStore = backend_class("job store", SCHEMES, url)(url, render)
    return store
