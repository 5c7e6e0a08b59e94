"""Observing the queue for the autoscaler: what its load is, read from the broker and the job store."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

from framequeue.brokers.base import Broker, QueueStats
from framequeue.jobs import PRIORITIES, JobStatus, Priority
from framequeue.jobstore import JobStateStore

__all__ = ["QueueLoad", "QueueObserver", "StatsSource"]

#: the job store's running jobs are counted up to this many (more changes no decision: max_workers caps it)
RUNNING_COUNT_CAP = 1000


@dataclass(frozen=True)
class QueueLoad:
    """What one look at the queue says."""

    #: ready + delayed messages
    waiting: int
    #: jobs being worked on
    in_flight: int
    #: pids on this host whose worker holds a running job's lease (None: unknown); scale-in spares them
    busy_pids: frozenset[int] | None = None


StatsSource = Callable[[], QueueLoad]


class QueueObserver:
    """The queue's load from the broker's statistics and, when given, the job store's running jobs: they count
    the in-flight jobs of every instance (RabbitMQ's in_flight counts one connection's), and their lease owners
    (`host:pid`) say which of this host's workers are busy.

    With `lanes` (a worker group's: framequeue.brokers.base), the load is those lanes' only: their waiting
    messages (QueueStats.waiting_by_priority) and their running jobs; in flight then comes from the job store
    alone, as the broker does not count it per lane."""

    def __init__(self, broker: Broker, store: JobStateStore | None = None, host: str | None = None,
                 lanes: tuple[Priority, ...] = PRIORITIES) -> None:
        self.broker, self.store = broker, store
        self.host = host or socket.gethostname()
        self.lanes = frozenset(lanes)

    def __call__(self) -> QueueLoad:
        stats = self.broker.stats()
        waiting, in_flight = lane_waiting(stats, self.lanes), stats.in_flight
        if self.store is None:
            return QueueLoad(waiting, in_flight)
        running = self.store.list_jobs(JobStatus.RUNNING, limit=RUNNING_COUNT_CAP)
        if self.lanes != frozenset(PRIORITIES):
            running = [job for job in running if job.priority in self.lanes]
            in_flight = 0
        busy: set[int] = set()
        for job in running:
            host, _, pid = (job.lease_owner or "").rpartition(":")
            if host == self.host and pid.isdigit():
                busy.add(int(pid))
        return QueueLoad(waiting, max(in_flight, len(running)), frozenset(busy))


def lane_waiting(stats: QueueStats, lanes: frozenset[Priority]) -> int:
    """Waiting messages (ready + delayed) of `lanes`; of every lane when the broker cannot tell them apart."""
    if lanes == frozenset(PRIORITIES) or stats.waiting_by_priority is None:
        return stats.ready + stats.delayed
    return sum(count for lane, count in stats.waiting_by_priority.items() if lane in lanes)
