"""Where routes find the services: on the app's state, set once by the app factory."""

from __future__ import annotations

from fastapi import Request

from framequeue.endpoints.invocations import Invocations
from framequeue.endpoints.registry import ModelEndpointRegistry
from framequeue.notify.deliveries import DeliveryService
from framequeue.service import JobService
from framequeue.tenants.keys import Keys


def service_of(request: Request) -> JobService:
    service: JobService = request.app.state.service
    return service


def invocations_of(request: Request) -> Invocations:
    invocations: Invocations = request.app.state.invocations
    return invocations


def registry_of(request: Request) -> ModelEndpointRegistry:
    registry: ModelEndpointRegistry = request.app.state.registry
    return registry


def deliveries_of(request: Request) -> DeliveryService:
    deliveries: DeliveryService = request.app.state.deliveries
    return deliveries


def keys_of(request: Request) -> Keys:
    keys: Keys = request.app.state.keys
    return keys
