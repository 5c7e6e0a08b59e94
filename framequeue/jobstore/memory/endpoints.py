"""Async endpoints in the in-memory job store: names are unique across tenants, each its tenant's alone."""

from __future__ import annotations

from framequeue.endpoints.async_endpoints import Endpoint
from framequeue.errors import EndpointExists, EndpointNotFound
from framequeue.jobstore.memory.state import MemoryBase


class MemoryEndpoints(MemoryBase):
    def create_endpoint(self, ep: Endpoint) -> Endpoint:
        with self._state.lock:
            if ep.name in self._state.endpoints:
                raise EndpointExists(f"an endpoint named {ep.name!r} exists; delete it first")
            self._state.endpoints[ep.name] = ep
            return ep

    def get_endpoint(self, name: str, tenant: str) -> Endpoint:
        with self._state.lock:
            ep = self._state.endpoints.get(name)
            if ep is None or ep.tenant != tenant:
                raise EndpointNotFound(f"no endpoint named {name!r}")
            return ep

    def list_endpoints(self, tenant: str) -> list[Endpoint]:
        with self._state.lock:
            return sorted((e for e in self._state.endpoints.values() if e.tenant == tenant), key=lambda e: e.name)

    def delete_endpoint(self, name: str, tenant: str) -> None:
        with self._state.lock:
            self.get_endpoint(name, tenant)
            del self._state.endpoints[name]
