"""Async endpoints in a SQL job store, each its tenant's alone."""

from __future__ import annotations

from framequeue.endpoints.async_endpoints import Endpoint
from framequeue.errors import EndpointExists, EndpointNotFound
from framequeue.jobstore.sql.base import SqlBase
from framequeue.jobstore.sql.dialect import Row, Tx


class SqlEndpoints(SqlBase):
    def create_endpoint(self, ep: Endpoint) -> Endpoint:
        def work(tx: Tx) -> Endpoint:
            row = tx.one(
                """INSERT INTO {s}.endpoints (name, pipeline, params, output_path, failure_path,
                   success_webhook, error_webhook, webhook_secret, max_concurrent_invocations, created_at_s, tenant,
                   retention_s)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (name) DO NOTHING RETURNING name""",
                (ep.name, ep.pipeline, tx.dialect.encode_json(ep.params), ep.output_path, ep.failure_path,
                 ep.success_webhook, ep.error_webhook, ep.webhook_secret, ep.max_concurrent_invocations,
                 ep.created_at_s, ep.tenant, ep.retention_s),
            )
            if row is None:
                raise EndpointExists(f"an endpoint named {ep.name!r} exists; delete it first")
            return ep

        return self._engine.write(work)

    def get_endpoint(self, name: str, tenant: str) -> Endpoint:
        def work(tx: Tx) -> Endpoint:
            row = tx.one("SELECT * FROM {s}.endpoints WHERE name = %s AND tenant = %s", (name, tenant))
            if row is None:
                raise EndpointNotFound(f"no endpoint named {name!r}")
            return _endpoint(tx, row)

        return self._engine.read(work)

    def list_endpoints(self, tenant: str) -> list[Endpoint]:
        text = "SELECT * FROM {s}.endpoints WHERE tenant = %s ORDER BY name"
        return self._engine.read(lambda tx: [_endpoint(tx, r) for r in tx.all(text, (tenant,))])

    def delete_endpoint(self, name: str, tenant: str) -> None:
        def work(tx: Tx) -> None:
            if tx.run("DELETE FROM {s}.endpoints WHERE name = %s AND tenant = %s", (name, tenant)) == 0:
                raise EndpointNotFound(f"no endpoint named {name!r}")

        self._engine.write(work)


def _endpoint(tx: Tx, row: Row) -> Endpoint:
    return Endpoint(**{**row, "params": tx.dialect.decode_json(row["params"])})
