"""API keys, scopes and tenants. Pure: no I/O (the job store keeps the keys, the API checks them).

A key reads `fq_<id>_<secret>`: `id` (12 hex) names the row, `secret` is 32 random bytes (base64url).
Only SHA-256 of the whole key is stored. A salted slow hash (bcrypt, argon2) protects *low-entropy*
secrets such as passwords against offline guessing; these keys carry 256 random bits, so a single
SHA-256 is already out of reach of any brute force, and it costs nothing per request. The row is found
by its id, then the hashes are compared in constant time (`hmac.compare_digest`).

Scopes are ordered: read ⊂ submit ⊂ admin. read reads jobs and their outputs; submit also uploads,
submits, invokes and cancels; admin also manages keys and (deployment-wide) endpoints.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from framequeue.errors import InvalidParams

Scope = Literal["read", "submit", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "submit", "admin")
#: the tenant of every job made while no key exists (single-tenant development mode) and of rows older
#: than tenants
DEFAULT_TENANT = "default"

_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_KEY = re.compile(r"^fq_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class ApiKey:
    id: str
    tenant: str
    name: str
    #: the highest scope granted (it implies the ones below it)
    scopes: Scope
    #: hex SHA-256 of the whole key; the key itself is never stored
    key_hash: str
    created_at_s: float
    revoked_at_s: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at_s is not None

    def to_dict(self) -> dict[str, Any]:
        """What `keys list` and the API show: never the hash."""
        return {"id": self.id, "tenant": self.tenant, "name": self.name, "scope": self.scopes,
                "created_at_s": self.created_at_s, "revoked_at_s": self.revoked_at_s}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant and the scope of its key. `dev` marks the open development mode (no key
    exists), where inputs are not confined to the tenant's upload prefix."""

    tenant: str
    scope: Scope
    key_id: str | None = None
    dev: bool = False

    def allows(self, needed: Scope) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(needed)


#: the caller in development mode, and of the CLI's and tests' direct service calls
DEV_PRINCIPAL = Principal(DEFAULT_TENANT, "admin", None, dev=True)


def check_tenant(tenant: str) -> str:
    if not _TENANT.match(tenant):
        raise InvalidParams("tenant: 1..63 lowercase letters, digits, '-' or '_', starting with a letter or digit")
    return tenant


def check_scope(scope: str) -> Scope:
    for known in SCOPES:
        if scope == known:
            return known
    raise InvalidParams(f"scope: one of {', '.join(SCOPES)}")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(tenant: str, scope: str, name: str, now_s: float) -> tuple[ApiKey, str]:
    """A fresh key: its row (hash only) and the key itself, to be shown once."""
    key_id = secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    key = f"fq_{key_id}_{secret}"
    row = ApiKey(key_id, check_tenant(tenant), name[:200], check_scope(scope), hash_key(key), now_s)
    return row, key


def key_id(key: str) -> str | None:
    """The row id a well-formed key names; None for anything else."""
    m = _KEY.match(key)
    return m.group(1) if m else None


def verify(row: ApiKey | None, key: str) -> bool:
    """Whether `key` is the live key of `row`, in constant time over the hash."""
    if row is None:
        hmac.compare_digest(hash_key(key), "0" * 64)  # the same work whether the id exists or not
        return False
    return hmac.compare_digest(hash_key(key), row.key_hash) and not row.revoked
