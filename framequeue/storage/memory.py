"""An in-process object store: a real implementation of the ObjectStore contract for one process (tests,
embedded use with threads). Stores opened with the same `memory://NAME` share their objects.

A writer fills its own buffer and publishes it under the lock when its context exits without error, so
readers see an object whole or not at all. No URLs are signed.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import urlsplit

from framequeue.errors import InvalidParams, NotFound, ObjectExists, PresignUnsupported
from framequeue.storage.base import PresignMethod, check_key, check_presign, check_range


class _Bucket:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objects: dict[str, bytes] = {}


_buckets: dict[str, _Bucket] = {}
_buckets_lock = threading.Lock()


def _bucket(name: str) -> _Bucket:
    with _buckets_lock:
        if name not in _buckets:
            _buckets[name] = _Bucket()
        return _buckets[name]


class MemoryObjectStore:
    def __init__(self, name: str) -> None:
        self.name = name
        self._b = _bucket(name)

    @classmethod
    def from_url(cls, url: str) -> MemoryObjectStore:
        parts = urlsplit(url)
        if parts.scheme != "memory" or not parts.netloc or parts.path.strip("/") or parts.query:
            raise InvalidParams(f"not an in-memory store URL (memory://NAME): {url}")
        return cls(parts.netloc)

    @contextlib.contextmanager
    def open_write(self, key: str, *, create_only: bool = False) -> Iterator[BinaryIO]:
        check_key(key)
        if create_only and self.size(key) is not None:
            raise ObjectExists(f"object {key} already exists")
        buf = io.BytesIO()
        yield buf
        data = buf.getvalue()
        with self._b.lock:
            if create_only and key in self._b.objects:
                raise ObjectExists(f"object {key} already exists")
            self._b.objects[key] = data

    @contextlib.contextmanager
    def open_read(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[BinaryIO]:
        check_range(start, end)
        data = self.get(key)
        # bytes are immutable: a whole-object reader shares the stored object, it does not copy it; a range
        # is a view, and only the range is copied
        payload = data if start == 0 and end is None else memoryview(data)[start:end]
        with io.BytesIO(payload) as fh:
            yield fh

    def put(self, key: str, data: bytes, *, create_only: bool = False) -> None:
        with self.open_write(key, create_only=create_only) as fh:
            fh.write(data)

    def get(self, key: str) -> bytes:
        check_key(key)
        with self._b.lock:
            data = self._b.objects.get(key)
        if data is None:
            raise NotFound(f"no object {key}")
        return data

    def size(self, key: str) -> int | None:
        check_key(key)
        with self._b.lock:
            data = self._b.objects.get(key)
        return None if data is None else len(data)

    def list(self, prefix: str) -> list[str]:
        # the same segment-wise prefix as a folder: "a/b" lists a/b/…, not a/bc
        base = check_key(prefix).rstrip("/") + "/" if prefix.strip("/") else ""
        with self._b.lock:
            return sorted(k for k in self._b.objects if k.startswith(base))

    def delete(self, key: str) -> None:
        check_key(key)
        with self._b.lock:
            self._b.objects.pop(key, None)

    def url(self, key: str) -> str:
        return f"memory://{self.name}/{key}"

    def presign(self, key: str, method: PresignMethod = "GET", expires_s: int = 3600) -> str:
        check_presign(key, method, expires_s)
        raise PresignUnsupported("a memory:// object store cannot sign URLs; stream the object through the service")
