"""Backends are chosen by URL, never by code changes. Each opener imports its backend lazily."""

from __future__ import annotations

from urllib.parse import urlsplit

from framequeue.brokers.base import Broker
from framequeue.errors import InvalidParams
from framequeue.jobstore.base import JobStore, PayloadRenderer
from framequeue.storage.base import ObjectStore


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()


def open_jobstore(url: str, render: PayloadRenderer) -> JobStore:
    scheme = _scheme(url)
    if scheme == "sqlite":
        from framequeue.jobstore.sqlite import SQLiteJobStore

        return SQLiteJobStore(url, render)
    raise InvalidParams(f"no job store for {scheme}:// URLs (supported: sqlite://)")


def open_broker(url: str) -> Broker:
    scheme = _scheme(url)
    if scheme == "sqlite":
        from framequeue.brokers.sqlite import SQLiteBroker

        return SQLiteBroker(url)
    raise InvalidParams(f"no broker for {scheme}:// URLs (supported: sqlite://)")


def open_storage(url: str) -> ObjectStore:
    scheme = _scheme(url)
    if scheme == "file":
        from framequeue.storage.local import LocalObjectStore

        return LocalObjectStore.from_url(url)
    raise InvalidParams(f"no object store for {scheme}:// URLs (supported: file://)")


def redact_url(url: str) -> str:
    """URLs with passwords are logged as scheme://user:***@host."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
