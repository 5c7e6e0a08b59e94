"""The model endpoint registry in a SQL job store: (model, version) -> URLs with weights."""

from __future__ import annotations

from framequeue.endpoints.routing import ModelEndpoint, State
from framequeue.errors import ModelEndpointExists, ModelEndpointNotFound
from framequeue.jobstore.sql.base import SqlBase
from framequeue.jobstore.sql.dialect import Tx


class SqlModelEndpoints(SqlBase):
    def register_model_endpoint(self, ep: ModelEndpoint) -> ModelEndpoint:
        def work(tx: Tx) -> ModelEndpoint:
            row = tx.one(
                """INSERT INTO {s}.model_endpoints (id, model, version, url, weight, state, created_at_s)
                   VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id""",
                (ep.id, ep.model, ep.version, ep.url, ep.weight, ep.state, ep.created_at_s),
            )
            if row is None:
                raise ModelEndpointExists(f"{ep.model} version {ep.version} already has an endpoint at {ep.url}")
            return ep

        return self._engine.write(work)

    def list_model_endpoints(self, model: str | None = None) -> list[ModelEndpoint]:
        where, args = ("WHERE model = %s", (model,)) if model is not None else ("", ())
        text = f"SELECT * FROM {{s}}.model_endpoints {where} ORDER BY model, version, created_at_s, id"
        return self._engine.read(lambda tx: [ModelEndpoint(**r) for r in tx.all(text, args)])

    def get_model_endpoint(self, endpoint_id: str) -> ModelEndpoint:
        row = self._engine.read(lambda tx: tx.one("SELECT * FROM {s}.model_endpoints WHERE id = %s", (endpoint_id,)))
        if row is None:
            raise ModelEndpointNotFound(f"no model endpoint {endpoint_id}")
        return ModelEndpoint(**row)

    def set_model_endpoint_weight(self, endpoint_id: str, weight: float) -> ModelEndpoint:
        return self._update(endpoint_id, "weight", weight)

    def set_model_endpoint_state(self, endpoint_id: str, state: State) -> ModelEndpoint:
        return self._update(endpoint_id, "state", state)

    def remove_model_endpoint(self, endpoint_id: str) -> None:
        def work(tx: Tx) -> None:
            if tx.run("DELETE FROM {s}.model_endpoints WHERE id = %s", (endpoint_id,)) == 0:
                raise ModelEndpointNotFound(f"no model endpoint {endpoint_id}")

        self._engine.write(work)

    def _update(self, endpoint_id: str, column: str, value: object) -> ModelEndpoint:
        assert column in ("weight", "state")
        text = f"UPDATE {{s}}.model_endpoints SET {column} = %s WHERE id = %s RETURNING *"
        row = self._engine.write(lambda tx: tx.one(text, (value, endpoint_id)), repeatable=True)
        if row is None:
            raise ModelEndpointNotFound(f"no model endpoint {endpoint_id}")
        return ModelEndpoint(**row)
