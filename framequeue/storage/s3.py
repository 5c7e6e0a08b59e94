"""Objects in an S3 bucket under a prefix, through obstore (Rust `object_store`). Contract:
framequeue.storage.base.ObjectStore.

    s3://[ACCESS_KEY:SECRET@]BUCKET[/PREFIX][?endpoint=URL&region=NAME&timeout_s=N]

Credentials, endpoint and region come from the URL, else from the standard AWS variables
(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ENDPOINT_URL`, `AWS_REGION`)
or the instance / container / web-identity credentials that object_store finds itself. An endpoint
means path-style requests, and may be http:// (a MinIO or moto on loopback).

- Reads stream one GET in chunks of `READ_CHUNK_BYTES`; a ranged read is one GET with a Range header.
- Objects are written with the Content-Type their extension names (`base.content_type`), so a presigned GET
  of an MP4 answers `video/mp4` and a browser plays it (not a create-only object over one part: S3's multipart
  copy does not carry the type over, and S3 then answers binary/octet-stream).
- Writes upload parts of `PART_BYTES`, `PART_CONCURRENCY` at a time (a body under one part is a single
  PUT); the object appears on CompleteMultipartUpload, and a write that raises aborts its upload.
- Create-only writes: a body under one part is a PUT with `If-None-Match: *`; a larger one is uploaded
  to a staging key under `.partial/` and copied to its key with a multipart copy completed with
  `If-None-Match: *` (so at most 5 GiB, S3's limit for one copied part), then the staging key is
  deleted. A lifecycle rule on `.partial/` and on incomplete multipart uploads sweeps what a killed
  process leaves behind.

obstore runs requests on its own Rust runtime, which does not survive fork(): a process forked after
using S3 hangs on its first S3 call. Media children come from a fork server started fresh, and never
touch the store.
"""

from __future__ import annotations

import contextlib
import io
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, BinaryIO, cast
from urllib.parse import parse_qs, unquote, urlsplit

import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import S3Store

from framequeue.errors import (
    FrameQueueError,
    InvalidKey,
    InvalidParams,
    NotFound,
    ObjectExists,
    ServiceUnavailable,
    StorageError,
)
from framequeue.storage.base import PresignMethod, check_key, check_presign, check_range, content_type

if TYPE_CHECKING:
    from obstore import GetOptions, GetResult, WritableFile
    from obstore.store import S3Config
    from typing_extensions import Buffer

#: one multipart part; a body under it is a single PUT. 10,000 parts make objects of up to 78 GiB
PART_BYTES = 8 * 1024 * 1024
#: parts in flight per writer: memory per writer is about (PART_CONCURRENCY + 1) × PART_BYTES
PART_CONCURRENCY = 4
#: writes reach the uploader in pieces of this size
CHUNK_BYTES = 1024 * 1024
#: reads arrive in pieces of this size (obstore gathers what the socket gives into pieces this large before
#: handing them over); each is copied once more on its way out, and a 256 KiB one is still in cache for that
#: copy: ~8 % less CPU per GiB downloaded than 1 MiB pieces, and half the memory (bench/storage.py)
READ_CHUNK_BYTES = 256 * 1024
#: where create-only writes larger than a part are staged before their conditional copy
STAGING_PREFIX = ".partial/"
#: a whole request, body included (object_store's own default, 30 s, is too short for a large GET)
DEFAULT_TIMEOUT_S = 900
#: retries of a failed request (connection refused or reset, 5xx, throttling), with exponential backoff
#: from 100 ms; after them the store is ServiceUnavailable (object_store's own default waits 3 minutes)
MAX_RETRIES = 5
RETRY_TIMEOUT_S = 30
_UNSATISFIABLE = "status code: 416"
_CLIENT_4XX = re.compile(r"status code: 4\d\d")
_OBSTORE_ERRORS = (BaseError, OSError)


class S3ObjectStore:
    def __init__(self, store: S3Store, bucket: str, prefix: str) -> None:
        self._store = store
        self.bucket = bucket
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str) -> S3ObjectStore:
        parts = urlsplit(url)
        # errors never repeat the URL: it may carry a secret key
        if parts.scheme != "s3" or not parts.hostname:
            raise InvalidParams("an S3 store URL names a bucket: s3://bucket/prefix")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint", "region", "timeout_s"}
        if unknown:
            raise InvalidParams(f"unknown S3 store URL options: {', '.join(sorted(unknown))}")
        prefix = parts.path.strip("/")
        if prefix:
            try:
                check_key(prefix)
            except InvalidKey as exc:
                raise InvalidParams(f"the S3 store's prefix is not usable: {exc.message}") from exc
        timeout_s = query.get("timeout_s", str(DEFAULT_TIMEOUT_S))
        if not timeout_s.isdigit() or int(timeout_s) < 1:
            raise InvalidParams(f"timeout_s is a whole number of seconds, at least 1: {timeout_s}")
        config: S3Config = {"copy_if_not_exists": "multipart"}
        if parts.username is not None:
            config["access_key_id"] = unquote(parts.username)
            config["secret_access_key"] = unquote(parts.password or "")
        if "endpoint" in query:
            config["endpoint"] = query["endpoint"]
        if "region" in query:
            config["region"] = query["region"]
        store = S3Store(
            parts.hostname,
            prefix=prefix or None,
            config=config,
            # an endpoint (URL or AWS_ENDPOINT_URL) is always the operator's explicit choice, loopback included
            client_options={"allow_http": True, "timeout": timedelta(seconds=int(timeout_s))},
            retry_config={"max_retries": MAX_RETRIES, "retry_timeout": timedelta(seconds=RETRY_TIMEOUT_S)},
        )
        return cls(store, parts.hostname, prefix)

    def _error(self, exc: Exception, key: str) -> FrameQueueError:
        """The most specific framequeue error for an obstore failure on `key`."""
        text = str(exc).split("\n", 1)[0][:400]
        if isinstance(exc, AlreadyExistsError | PreconditionError):
            return ObjectExists(f"object {key} already exists")
        if "NoSuchBucket" in str(exc):
            return StorageError(f"the bucket {self.bucket} does not exist")
        if isinstance(exc, FileNotFoundError):
            return NotFound(f"no object {key}")
        if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
            return StorageError(f"S3 refused access to {self.url(key)} (check the credentials): {text}")
        if _CLIENT_4XX.search(text):
            return StorageError(f"S3 refused a request on {self.url(key)}: {text}")
        return ServiceUnavailable(f"S3 is not answering for {self.url(key)}: {text}")

    @contextlib.contextmanager
    def open_write(self, key: str, *, create_only: bool = False) -> Iterator[BinaryIO]:
        check_key(key)
        if create_only and self.size(key) is not None:
            raise ObjectExists(f"object {key} already exists")
        upload = _Upload(self, key, create_only)
        fh = io.BufferedWriter(upload, buffer_size=CHUNK_BYTES)
        try:
            yield cast(BinaryIO, fh)
            fh.flush()
            upload.commit()
        except BaseException:
            upload.abort()
            raise
        finally:
            fh.close()

    @contextlib.contextmanager
    def open_read(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[BinaryIO]:
        check_key(key)
        check_range(start, end)
        result = self._get(key, start, end)
        if result is None:
            with io.BytesIO() as empty:
                yield empty
            return
        raw = _Download(self, key, result.stream(min_chunk_size=READ_CHUNK_BYTES))
        with io.BufferedReader(raw, buffer_size=READ_CHUNK_BYTES) as fh:
            yield cast(BinaryIO, fh)

    def _get(self, key: str, start: int, end: int | None) -> GetResult | None:
        """The GET of `[start, end)`; None when the range reads nothing from an object that is there."""
        options: GetOptions = {}
        if end is not None:
            options["range"] = (start, end)
        elif start:
            options["range"] = {"offset": start}
        if end != start:  # S3 has no empty range: then a HEAD says whether the object is there
            try:
                return obstore.get(self._store, key, options=options)
            except _OBSTORE_ERRORS as exc:
                # 416: the range starts at or past the end, which reads nothing (when the object is there)
                if _UNSATISFIABLE not in str(exc):
                    raise self._error(exc, key) from exc
        if self.size(key) is None:
            raise NotFound(f"no object {key}")
        return None

    def put(self, key: str, data: bytes, *, create_only: bool = False) -> None:
        with self.open_write(key, create_only=create_only) as fh:
            fh.write(data)

    def get(self, key: str) -> bytes:
        with self.open_read(key) as fh:
            return fh.read()

    def size(self, key: str) -> int | None:
        check_key(key)
        try:
            return obstore.head(self._store, key)["size"]
        except FileNotFoundError:  # (a missing bucket too: a HEAD answer has no body to say which)
            return None
        except _OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    def list(self, prefix: str) -> list[str]:
        base = check_key(prefix).rstrip("/") if prefix.strip("/") else None
        try:
            keys = [meta["path"] for batch in obstore.list(self._store, base) for meta in batch]
        except _OBSTORE_ERRORS as exc:
            raise self._error(exc, prefix) from exc
        return sorted(k for k in keys if not k.startswith(STAGING_PREFIX))

    def delete(self, key: str) -> None:
        check_key(key)
        try:
            obstore.delete(self._store, key)
        except FileNotFoundError:
            pass
        except _OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}/{key}" if self.prefix else f"s3://{self.bucket}/{key}"

    def presign(self, key: str, method: PresignMethod = "GET", expires_s: int = 3600) -> str:
        check_presign(key, method, expires_s)
        try:
            return obstore.sign(self._store, method, key, timedelta(seconds=expires_s))
        except _OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    # used by _Upload ------------------------------------------------------------------------------------

    def _writer(self, key: str, media_type: str) -> WritableFile:
        return obstore.open_writer(self._store, key, buffer_size=PART_BYTES, max_concurrency=PART_CONCURRENCY,
                                   attributes={"Content-Type": media_type})

    def _put_create(self, key: str, data: bytes) -> None:
        try:
            obstore.put(self._store, key, data, mode="create", use_multipart=False,
                        attributes={"Content-Type": content_type(key)})
        except _OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    def _copy_create(self, staged: str, key: str) -> None:
        try:
            obstore.copy(self._store, staged, key, overwrite=False)
        except _OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc


class _Upload(io.RawIOBase):
    """The raw side of a writer: commit() makes the object appear, abort() leaves nothing (close does neither)."""

    def __init__(self, objects: S3ObjectStore, key: str, create_only: bool) -> None:
        self._objects = objects
        self._key = key
        self._create_only = create_only
        #: create-only bodies wait here until they outgrow one part (then they are staged)
        self._head = bytearray()
        self._staged: str | None = None
        self._writer: WritableFile | None = None if create_only else objects._writer(key, content_type(key))
        self._done = False

    def writable(self) -> bool:
        return True

    def write(self, b: Buffer, /) -> int:
        data = memoryview(b).cast("B")
        if self._done:
            return len(data)  # an aborted upload swallows what its buffered writer still flushes
        try:
            if self._writer is None:
                self._head += data
                if len(self._head) > PART_BYTES:
                    self._staged = f"{STAGING_PREFIX}{uuid.uuid4().hex}"
                    self._writer = self._objects._writer(self._staged, content_type(self._key))
                    self._writer.write(bytes(self._head))
                    self._head = bytearray()
            else:
                # a copy: obstore keeps a view of what it is given until the part is sent, and the buffered
                # writer in front of us (like any caller) reuses its buffer at once
                self._writer.write(bytes(data))
        except _OBSTORE_ERRORS as exc:
            raise self._objects._error(exc, self._key) from exc
        return len(data)

    def commit(self) -> None:
        self._done = True
        if self._writer is None:  # create-only, one part at most
            self._objects._put_create(self._key, bytes(self._head))
            return
        try:
            self._writer.close()
        except _OBSTORE_ERRORS as exc:
            raise self._objects._error(exc, self._key) from exc
        if self._staged is not None:
            try:
                self._objects._copy_create(self._staged, self._key)
            finally:
                self._objects.delete(self._staged)

    def abort(self) -> None:
        """Drop the multipart upload (or the staged object): nothing appears under the key."""
        if self._writer is not None and not self._writer.closed():
            with contextlib.suppress(*_OBSTORE_ERRORS):
                self._writer.__exit__(RuntimeError, RuntimeError("write aborted"), None)
        self._done = True
        self._head = bytearray()


class _Download(io.RawIOBase):
    """The raw side of a reader: the chunks of one streaming GET."""

    def __init__(self, objects: S3ObjectStore, key: str, chunks: Iterator[bytes]) -> None:
        self._objects = objects
        self._key = key
        self._chunks: Iterator[bytes] | None = chunks
        self._chunk = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: Buffer, /) -> int:
        out = memoryview(b).cast("B")
        while not self._chunk:
            if self._chunks is None:
                return 0
            try:
                self._chunk = memoryview(next(self._chunks))
            except StopIteration:
                self._chunks = None
                return 0
            except _OBSTORE_ERRORS as exc:
                raise self._objects._error(exc, self._key) from exc
        n = min(len(out), len(self._chunk))
        out[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n

    def close(self) -> None:
        self._chunks = None  # drops the response: its connection closes
        self._chunk = memoryview(b"")
        super().close()
