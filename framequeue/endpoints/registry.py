"""The model-endpoint registry as a service: register where a (model, version) runs, list, reweigh or
drain, remove. Deployment-wide (the callers check the admin scope); used by the API and the CLI alike."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from framequeue.endpoints.routing import (
    ModelEndpoint,
    check_model_endpoint,
    check_state,
    check_weight,
    new_endpoint_id,
)
from framequeue.errors import InvalidParams
from framequeue.jobstore import ModelEndpointStore
from framequeue.models.repository import ModelRepository


class ModelEndpointRegistry:
    def __init__(
        self, store: ModelEndpointStore, models: ModelRepository, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._models = models
        self._clock = clock

    def register(self, model: str, version: int, url: str, weight: float = 1.0) -> dict[str, Any]:
        """Register where (model, version) runs; the version must be in this deployment's model repository
        (the worker prepares frames with its config even when the model runs remotely)."""
        ep = check_model_endpoint(ModelEndpoint(new_endpoint_id(), model, version, url, weight, "active",
                                                self._clock()))
        self._models.get(ep.model, ep.version)  # UnknownModel when it is not there
        return self._store.register_model_endpoint(ep).to_dict()

    def list(self, model: str | None = None) -> dict[str, Any]:
        return {"model_endpoints": [e.to_dict() for e in self._store.list_model_endpoints(model)]}

    def update(self, endpoint_id: str, *, weight: float | None = None, state: str | None = None) -> dict[str, Any]:
        if weight is None and state is None:
            raise InvalidParams("give weight or state")
        if weight is not None:
            self._store.set_model_endpoint_weight(endpoint_id, check_weight(weight))
        if state is not None:
            self._store.set_model_endpoint_state(endpoint_id, check_state(state))
        return self._store.get_model_endpoint(endpoint_id).to_dict()

    def remove(self, endpoint_id: str) -> None:
        self._store.remove_model_endpoint(endpoint_id)
