"""The ObjectStore protocol: keyed blobs, streamed, written atomically.

Keys are relative, '/'-separated, built by the server. A writer's object appears whole on close or not
at all. `url` names an object (or a prefix ending in '/') the way users see output locations.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import BinaryIO, Protocol

from framequeue.errors import InvalidKey

MAX_KEY_LEN = 1024
_SEGMENT = re.compile(r"^[A-Za-z0-9._=+@,-]+$")


def check_key(key: str) -> str:
    """Refuse keys that could escape a store's root: '..', absolute paths, NUL, odd characters, huge length."""
    if not key or len(key) > MAX_KEY_LEN:
        raise InvalidKey(f"object keys are 1..{MAX_KEY_LEN} characters long")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise InvalidKey("object keys are relative, '/'-separated and contain no NUL or backslash")
    for segment in key.rstrip("/").split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.match(segment):
            raise InvalidKey(f"object key segment {segment!r} is not allowed (letters, digits and ._=+@,- only)")
    return key


class ObjectStore(Protocol):
    def open_write(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A file-like writer; the object appears atomically when the context exits without error."""
        ...

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A file-like reader; NotFound when the object does not exist."""
        ...

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def size(self, key: str) -> int | None:
        """Size in bytes, or None when the object does not exist."""
        ...

    def list(self, prefix: str) -> list[str]: ...

    def delete(self, key: str) -> None:
        """Remove an object; a missing one is not an error."""
        ...

    def url(self, key: str) -> str: ...
