"""Each tenant's uploads live under its own prefix, `uploads/<tenant>/`: the key a new upload gets, and the
answer to a job whose input is not there, or not the tenant's (the same answer: nothing to probe)."""

from __future__ import annotations

import re
import uuid

from framequeue.errors import InputNotFound

_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def upload_prefix(tenant: str) -> str:
    return f"uploads/{tenant}/"


def upload_key(filename: str | None, tenant: str) -> str:
    """A fresh server-built key under the tenant's upload prefix (`uploads/<tenant>/<uuid>/<name>`); the
    client's file name is kept only as a hint."""
    name = _FILENAME_UNSAFE.sub("_", (filename or "input").rsplit("/", 1)[-1]).strip("._") or "input"
    return f"{upload_prefix(tenant)}{uuid.uuid4().hex}/{name[:100]}"


def input_not_found(input_key: str) -> InputNotFound:
    return InputNotFound(f"no object {input_key!r} in the store; upload it first (POST /v1/uploads)")
