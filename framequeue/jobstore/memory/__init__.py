"""The in-memory job store: a real implementation of framequeue.jobstore.JobStore for one process (tests,
embedded use with threads), `memory://NAME`. The same rules as the SQL stores (framequeue.jobs decides
claims and the reaper's verdicts, framequeue.notify.events the outbox rows), one lock per store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from framequeue.jobstore.memory.api_keys import MemoryApiKeys
from framequeue.jobstore.memory.deliveries import MemoryDeliveries
from framequeue.jobstore.memory.endpoints import MemoryEndpoints
from framequeue.jobstore.memory.jobs import MemoryJobs
from framequeue.jobstore.memory.leases import MemoryLeases
from framequeue.jobstore.memory.model_endpoints import MemoryModelEndpoints
from framequeue.jobstore.memory.outbox import MemoryOutbox
from framequeue.jobstore.memory.retention import MemoryRetention
from framequeue.jobstore.memory.segments import MemorySegments


class MemoryJobStore(
    MemoryJobs, MemoryLeases, MemoryOutbox, MemoryDeliveries, MemoryEndpoints, MemoryModelEndpoints, MemoryApiKeys,
    MemoryRetention, MemorySegments,
):
    def ping(self) -> None:
        """Always answers: the store is this process's memory."""

    def close(self) -> None:
        """Nothing to release; the tables stay for other stores opened on the same name."""


if TYPE_CHECKING:
    from framequeue.jobstore.ports import JobStore

    _conforms: type[JobStore] = MemoryJobStore

__all__ = ["MemoryJobStore"]
