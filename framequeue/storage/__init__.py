"""The ObjectStore port (base.py) and its backends, one module each, opened by URL scheme; locations.py
resolves `s3://bucket/key` URIs to a store and a key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from framequeue.config import Backend, backend_class
from framequeue.storage.base import ObjectStore

if TYPE_CHECKING:
    from framequeue.storage.local import LocalObjectStore
    from framequeue.storage.memory import MemoryObjectStore
    from framequeue.storage.s3 import S3ObjectStore

__all__ = ["SCHEMES", "open_storage"]

SCHEMES: Final[Mapping[str, Backend]] = {
    "file": Backend("framequeue.storage.local", "LocalObjectStore"),
    "memory": Backend("framequeue.storage.memory", "MemoryObjectStore"),
    "s3": Backend("framequeue.storage.s3", "S3ObjectStore", "s3"),
}

if TYPE_CHECKING:  # mypy checks that each backend, built from a URL, is an ObjectStore
    _OPENERS: tuple[Callable[[str], ObjectStore], ...] = (
        LocalObjectStore.from_url, MemoryObjectStore.from_url, S3ObjectStore.from_url,
    )


def open_storage(url: str) -> ObjectStore:
    """The object store `url` names; InvalidParams for an unknown scheme or a missing client library."""
    store: ObjectStore = backend_class("object store", SCHEMES, url).from_url(url)
    return store
