"""Objects as files under one root folder. Contract: framequeue.storage.base.ObjectStore.

A write goes to a `.partial-*` file beside its key and is renamed into place on success; a create-only
write is hard-linked into place instead, which fails atomically when the key exists. No URLs are signed.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import unquote, urlsplit

from framequeue.errors import InvalidKey, InvalidParams, NotFound, ObjectExists, PresignUnsupported
from framequeue.storage.base import PresignMethod, Window, check_key, check_presign, check_range


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_url(cls, url: str) -> LocalObjectStore:
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise InvalidParams(f"not a local store URL (file:///path): {url}")
        return cls(Path(unquote(parts.path)))

    def path(self, key: str) -> Path:
        """The file behind a key; refuses anything that resolves outside the root (symlinks too)."""
        check_key(key)
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise InvalidKey("object key escapes the store's root")
        return path

    @contextlib.contextmanager
    def open_write(self, key: str, *, create_only: bool = False) -> Iterator[BinaryIO]:
        path = self.path(key)
        if create_only and path.exists():
            raise ObjectExists(f"object {key} already exists")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            if create_only:
                try:
                    os.link(tmp, path)
                except FileExistsError as exc:
                    raise ObjectExists(f"object {key} already exists") from exc
                os.unlink(tmp)
            else:
                os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def open_read(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[BinaryIO]:
        path = self.path(key)
        check_range(start, end)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the context manager below
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise NotFound(f"no object {key}") from exc
        with fh:
            if start == 0 and end is None:
                yield fh
                return
            fh.seek(start)  # past the end is allowed: reads then return nothing
            with io.BufferedReader(Window(fh, None if end is None else end - start)) as window:
                yield cast(BinaryIO, window)

    def put(self, key: str, data: bytes, *, create_only: bool = False) -> None:
        with self.open_write(key, create_only=create_only) as fh:
            fh.write(data)

    def get(self, key: str) -> bytes:
        with self.open_read(key) as fh:
            return fh.read()

    def size(self, key: str) -> int | None:
        path = self.path(key)
        return path.stat().st_size if path.is_file() else None

    def list(self, prefix: str) -> list[str]:
        base = self.path(prefix) if prefix.strip("/") else self.root
        if not base.is_dir():
            return []
        keys = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith(".partial-"):
                keys.append(path.relative_to(self.root).as_posix())
        return sorted(keys)

    def delete(self, key: str) -> None:
        path = self.path(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        # folders are an artefact of this backend, not objects: drop the ones the delete left empty
        for parent in path.parents:
            if parent == self.root or self.root not in parent.parents:
                break
            try:
                parent.rmdir()
            except OSError:
                break

    def url(self, key: str) -> str:
        return (self.root / key).as_uri() + ("/" if key.endswith("/") else "")

    def presign(self, key: str, method: PresignMethod = "GET", expires_s: int = 3600) -> str:
        check_presign(key, method, expires_s)
        raise PresignUnsupported("a file:// object store cannot sign URLs; stream the object through the service")
