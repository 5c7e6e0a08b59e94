"""The model endpoint registry in the in-memory job store: (model, version) -> URLs with weights."""

from __future__ import annotations

from dataclasses import replace

from framequeue.endpoints.routing import ModelEndpoint, State
from framequeue.errors import ModelEndpointExists, ModelEndpointNotFound
from framequeue.jobstore.memory.state import MemoryBase


class MemoryModelEndpoints(MemoryBase):
    def register_model_endpoint(self, ep: ModelEndpoint) -> ModelEndpoint:
        with self._state.lock:
            rows = self._state.model_endpoints
            taken = any((e.model, e.version, e.url) == (ep.model, ep.version, ep.url) for e in rows.values())
            if ep.id in rows or taken:
                raise ModelEndpointExists(f"{ep.model} version {ep.version} already has an endpoint at {ep.url}")
            rows[ep.id] = ep
            return ep

    def list_model_endpoints(self, model: str | None = None) -> list[ModelEndpoint]:
        with self._state.lock:
            rows = [e for e in self._state.model_endpoints.values() if model is None or e.model == model]
            return sorted(rows, key=lambda e: (e.model, e.version, e.created_at_s, e.id))

    def get_model_endpoint(self, endpoint_id: str) -> ModelEndpoint:
        with self._state.lock:
            ep = self._state.model_endpoints.get(endpoint_id)
            if ep is None:
                raise ModelEndpointNotFound(f"no model endpoint {endpoint_id}")
            return ep

    def set_model_endpoint_weight(self, endpoint_id: str, weight: float) -> ModelEndpoint:
        with self._state.lock:
            ep = self._state.model_endpoints[endpoint_id] = replace(self.get_model_endpoint(endpoint_id), weight=weight)
            return ep

    def set_model_endpoint_state(self, endpoint_id: str, state: State) -> ModelEndpoint:
        with self._state.lock:
            ep = self._state.model_endpoints[endpoint_id] = replace(self.get_model_endpoint(endpoint_id), state=state)
            return ep

    def remove_model_endpoint(self, endpoint_id: str) -> None:
        with self._state.lock:
            self.get_model_endpoint(endpoint_id)
            del self._state.model_endpoints[endpoint_id]
