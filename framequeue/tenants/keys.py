"""Managing API keys: create (the key is shown once), list, revoke. Used by the CLI (straight on the job
store, no API needed) and by the admin routes (within the caller's tenant); knows nothing of HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from framequeue.errors import ApiKeyNotFound
from framequeue.jobstore import ApiKeyStore
from framequeue.tenants.auth import ApiKey, new_key


class Keys:
    def __init__(self, store: ApiKeyStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def create(self, tenant: str, scope: str, name: str = "") -> tuple[ApiKey, str]:
        """A new key's row and the key itself: the only time it is ever available."""
        row, key = new_key(tenant, scope, name, self._clock())
        self._store.create_api_key(row)
        return row, key

    def list(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return [k.to_dict() for k in self._store.list_api_keys(tenant)]

    def revoke(self, key_id: str, tenant: str | None = None) -> dict[str, Any]:
        """Revoke a key; with `tenant`, only one of that tenant's (another's answers as missing)."""
        if tenant is not None and self._store.get_api_key(key_id).tenant != tenant:
            raise ApiKeyNotFound(f"no API key {key_id}")
        return self._store.revoke_api_key(key_id, self._clock()).to_dict()
