"""Object locations named by URI (`s3://bucket/key`), as SageMaker's InputLocation and output paths are,
resolved to (object store, key). A URI under the deployment's own store is a key in it; another bucket
is reached through the same S3 service with the same credentials (one store per bucket, kept open).
Nothing else is reachable: a file:// or http(s):// location is refused, so no request can make the
service read its own disk or fetch a URL."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit, urlunsplit

from framequeue.errors import InvalidParams
from framequeue.storage import open_storage
from framequeue.storage.base import ObjectStore, check_key

_PROBE = "k"


def root_url(objects: ObjectStore) -> str:
    """The URI prefix of every key in `objects` (ends with '/')."""
    return objects.url(_PROBE)[: -len(_PROBE)]


class Locations:
    def __init__(self, objects: ObjectStore, storage_url: str) -> None:
        self._objects = objects
        self._root = root_url(objects)
        parts = urlsplit(storage_url)
        #: the deployment's S3 service (credentials in userinfo, endpoint and region in the query), or None
        self._s3 = parts if parts.scheme == "s3" else None
        self._buckets: dict[str, ObjectStore] = {}
        self._lock = threading.Lock()

    def resolve(self, uri: str) -> tuple[ObjectStore, str]:
        """The store and key behind `uri`; InvalidParams (naming the field's rule) when it is unreachable."""
        if uri.startswith(self._root):
            return self._objects, check_key(uri[len(self._root):])
        parts = urlsplit(uri)
        if parts.scheme != "s3" or not parts.hostname or parts.username or parts.query or parts.fragment:
            raise InvalidParams(f"{uri!r}: not an S3 URI (s3://bucket/key)")
        if self._s3 is None:
            raise InvalidParams(
                f"{uri!r}: this deployment's object store is not S3 ({self._root}); "
                "run it with FQ_STORAGE_URL=s3://… to read and write S3 locations"
            )
        key = check_key(parts.path.lstrip("/"))
        return self._bucket(parts.hostname), key

    def _bucket(self, bucket: str) -> ObjectStore:
        with self._lock:
            store = self._buckets.get(bucket)
            if store is None:
                assert self._s3 is not None
                netloc = self._s3.netloc.rsplit("@", 1)[0] + "@" + bucket if "@" in self._s3.netloc else bucket
                url = urlunsplit(("s3", netloc, "", self._s3.query, ""))
                store = self._buckets[bucket] = open_storage(url)
            return store
