"""API keys in a SQL job store: rows keep the key's hash, never the key."""

from __future__ import annotations

from framequeue.errors import ApiKeyNotFound
from framequeue.jobstore.sql.base import SqlBase
from framequeue.tenants.auth import ApiKey


class SqlApiKeys(SqlBase):
    def create_api_key(self, key: ApiKey) -> ApiKey:
        self._engine.write(
            lambda tx: tx.run(
                """INSERT INTO {s}.api_keys (id, tenant, name, scopes, key_hash, created_at_s, revoked_at_s)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                (key.id, key.tenant, key.name, key.scopes, key.key_hash, key.created_at_s, key.revoked_at_s),
            )
        )
        return key

    def get_api_key(self, key_id: str) -> ApiKey:
        row = self._engine.read(lambda tx: tx.one("SELECT * FROM {s}.api_keys WHERE id = %s", (key_id,)))
        if row is None:
            raise ApiKeyNotFound(f"no API key {key_id}")
        return ApiKey(**row)

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = self._engine.read(lambda tx: tx.one("SELECT * FROM {s}.api_keys WHERE key_hash = %s", (key_hash,)))
        return None if row is None else ApiKey(**row)

    def list_api_keys(self, tenant: str | None = None) -> list[ApiKey]:
        where, args = ("WHERE tenant = %s", (tenant,)) if tenant is not None else ("", ())
        text = f"SELECT * FROM {{s}}.api_keys {where} ORDER BY created_at_s, id"
        return self._engine.read(lambda tx: [ApiKey(**r) for r in tx.all(text, args)])

    def revoke_api_key(self, key_id: str, now_s: float) -> ApiKey:
        row = self._engine.write(
            lambda tx: tx.one(
                "UPDATE {s}.api_keys SET revoked_at_s = COALESCE(revoked_at_s, %s) WHERE id = %s RETURNING *",
                (now_s, key_id),
            ),
            repeatable=True,
        )
        if row is None:
            raise ApiKeyNotFound(f"no API key {key_id}")
        return ApiKey(**row)

    def has_api_keys(self) -> bool:
        return self._engine.read(lambda tx: tx.one("SELECT 1 AS one FROM {s}.api_keys LIMIT 1")) is not None
