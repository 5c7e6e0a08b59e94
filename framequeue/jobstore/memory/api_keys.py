"""API keys in the in-memory job store: entries keep the key's hash, never the key."""

from __future__ import annotations

from dataclasses import replace

from framequeue.errors import ApiKeyNotFound
from framequeue.jobstore.memory.state import MemoryBase
from framequeue.tenants.auth import ApiKey


class MemoryApiKeys(MemoryBase):
    def create_api_key(self, key: ApiKey) -> ApiKey:
        with self._state.lock:
            self._state.api_keys[key.id] = key
            return key

    def get_api_key(self, key_id: str) -> ApiKey:
        with self._state.lock:
            key = self._state.api_keys.get(key_id)
            if key is None:
                raise ApiKeyNotFound(f"no API key {key_id}")
            return key

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        with self._state.lock:
            return next((k for k in self._state.api_keys.values() if k.key_hash == key_hash), None)

    def list_api_keys(self, tenant: str | None = None) -> list[ApiKey]:
        with self._state.lock:
            keys = [k for k in self._state.api_keys.values() if tenant is None or k.tenant == tenant]
            return sorted(keys, key=lambda k: (k.created_at_s, k.id))

    def revoke_api_key(self, key_id: str, now_s: float) -> ApiKey:
        with self._state.lock:
            key = self.get_api_key(key_id)
            if key.revoked_at_s is None:
                key = self._state.api_keys[key_id] = replace(key, revoked_at_s=now_s)
            return key

    def has_api_keys(self) -> bool:
        with self._state.lock:
            return bool(self._state.api_keys)
