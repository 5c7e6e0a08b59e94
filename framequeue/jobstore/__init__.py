"""The job store port (framequeue.jobstore.ports) and its backends, one package each: `sqlite`, `postgres`
(both carry out the rules written once in `sql`, through a small dialect) and `memory`."""

from framequeue.jobstore.ports import (
    ApiKeyStore,
    DeliveryStore,
    EndpointStore,
    JobStateStore,
    JobStore,
    ModelEndpointStore,
    OutboxStore,
)

__all__ = [
    "ApiKeyStore",
    "DeliveryStore",
    "EndpointStore",
    "JobStateStore",
    "JobStore",
    "ModelEndpointStore",
    "OutboxStore",
]
