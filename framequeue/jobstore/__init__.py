"""The JobStore port (base.py) and its backends, opened by URL scheme."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from framequeue.config import Backend, backend_class
from framequeue.jobstore.base import JobStore, PayloadRenderer

if TYPE_CHECKING:
    from framequeue.jobstore.postgres import PostgresJobStore
    from framequeue.jobstore.sqlite import SQLiteJobStore

__all__ = ["SCHEMES", "open_jobstore"]

SCHEMES: Final[Mapping[str, Backend]] = {
    "sqlite": Backend("framequeue.jobstore.sqlite", "SQLiteJobStore"),
    "postgresql": Backend("framequeue.jobstore.postgres", "PostgresJobStore", "postgres"),
    "postgres": Backend("framequeue.jobstore.postgres", "PostgresJobStore", "postgres"),
}

if TYPE_CHECKING:  # mypy checks that each backend, built from a URL, is a JobStore
    _OPENERS: tuple[Callable[[str, PayloadRenderer], JobStore], ...] = (SQLiteJobStore, PostgresJobStore)


def open_jobstore(url: str, render: PayloadRenderer) -> JobStore:
    """The job store `url` names; InvalidParams for an unknown scheme or a missing client library."""
    store: JobStore = backend_class("job store", SCHEMES, url)(url, render)
    return store
