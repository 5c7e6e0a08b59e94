"""The ObjectStore protocol: keyed blobs, streamed, written atomically.

Keys are relative, '/'-separated, built by the server. A writer's object appears whole on close or not
at all: a write that raises, or whose process dies, leaves nothing under its key. `url` names an object
(or a prefix ending in '/') the way users see output locations (`file:///…`, `memory://…`, `s3://…`).

Commit-once: `open_write(key, create_only=True)` (and `put`) refuse to replace an existing object. The
check is atomic in every backend (a hard link on a file system, `If-None-Match: *` on S3), so of two
writers racing for one key exactly one wins; the other gets `ObjectExists` (at open when the object is
already there, else at close) and its data is discarded.

Ranged reads: `open_read(key, start=, end=)` streams the bytes `[start, end)` of an object, as a slice of
it would (`end` None: to its end; a range that runs past the end stops there; one that starts at or past
the end reads nothing), for HTTP Range requests. Memory stays bounded: the range streams like a whole read.
"""

from __future__ import annotations

import io
import re
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, BinaryIO, Final, Literal, Protocol

from framequeue.errors import InvalidKey, InvalidParams, ServiceUnavailable, StorageError

MAX_KEY_LEN = 1024
#: SigV4 caps a presigned URL's life at 7 days
MAX_PRESIGN_S = 7 * 24 * 3600
_SEGMENT = re.compile(r"^[A-Za-z0-9._=+@,-]+$")

PresignMethod = Literal["GET", "PUT"]

#: a key's extension -> the media type it is served with (API downloads, S3's Content-Type, presigned GETs)
CONTENT_TYPES: Final = {
    "mp4": "video/mp4", "webm": "video/webm", "mkv": "video/x-matroska", "avi": "video/x-msvideo",
    "json": "application/json", "jsonl": "application/x-ndjson", "csv": "text/csv", "txt": "text/plain",
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
}
DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"

if TYPE_CHECKING:
    from typing_extensions import Buffer


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


def check_presign(key: str, method: str, expires_s: int) -> None:
    check_key(key)
    if key.endswith("/"):
        raise InvalidKey("a presigned URL names one object, not a prefix")
    if method not in ("GET", "PUT"):
        raise InvalidParams(f"presigned URLs are for GET or PUT, not {method}")
    if not 1 <= expires_s <= MAX_PRESIGN_S:
        raise InvalidParams(f"a presigned URL lives 1..{MAX_PRESIGN_S} s, not {expires_s}")


def content_type(key: str) -> str:
    """The media type of the object under `key`, by its extension (application/octet-stream when unknown)."""
    name = key.rsplit("/", 1)[-1]
    if "." not in name:
        return DEFAULT_CONTENT_TYPE
    return CONTENT_TYPES.get(name.rsplit(".", 1)[-1].lower(), DEFAULT_CONTENT_TYPE)


def download_url(objects: ObjectStore, key: str, fallback: str, expires_s: int) -> str:
    """A presigned GET of `key` for `expires_s` where the store signs URLs, else (file://, memory://, or
    signing failed) `fallback`: the route through which the service streams the object itself."""
    try:
        return objects.presign(key, "GET", expires_s)
    except (StorageError, ServiceUnavailable):  # PresignUnsupported is a StorageError
        return fallback


def check_range(start: int, end: int | None) -> None:
    """A ranged read's bounds: 0 <= start, and start <= end when an end is given (InvalidParams)."""
    if start < 0 or (end is not None and end < start):
        raise InvalidParams(f"a read range is 0 <= start <= end, not [{start}, {end})")


class Window(io.RawIOBase):
    """At most `length` bytes of `raw` from where it stands: the reader of a range of a seekable file."""

    def __init__(self, raw: BinaryIO, length: int | None) -> None:
        self._raw = raw
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, b: Buffer, /) -> int:
        out = memoryview(b).cast("B")
        if self._left is not None:
            out = out[: self._left]
        n = self._raw.readinto(out) if out else 0  # type: ignore[attr-defined]
        if self._left is not None:
            self._left -= n
        return n


class ObjectStore(Protocol):
    def open_write(self, key: str, *, create_only: bool = False) -> AbstractContextManager[BinaryIO]:
        """A file-like writer; the object appears atomically when the context exits without error.

        With `create_only`, an existing object is never replaced: `ObjectExists` instead.
        """
        ...

    def open_read(self, key: str, *, start: int = 0, end: int | None = None) -> AbstractContextManager[BinaryIO]:
        """A file-like reader that streams (never the whole object in memory); NotFound when it does not exist.

        `start`/`end` read only the bytes `[start, end)`, clamped to the object like a slice (module doc).
        """
        ...

    def put(self, key: str, data: bytes, *, create_only: bool = False) -> None: ...

    def get(self, key: str) -> bytes: ...

    def size(self, key: str) -> int | None:
        """Size in bytes, or None when the object does not exist."""
        ...

    def list(self, prefix: str) -> list[str]: ...

    def delete(self, key: str) -> None:
        """Remove an object; a missing one is not an error."""
        ...

    def url(self, key: str) -> str: ...

    def presign(self, key: str, method: PresignMethod = "GET", expires_s: int = 3600) -> str:
        """A URL that lets its holder GET or PUT this one object without credentials, for `expires_s`.

        A presigned PUT overwrites (it is not commit-once). Stores that cannot sign (file://, memory://)
        raise `PresignUnsupported`: callers stream through the service instead.
        """
        ...
