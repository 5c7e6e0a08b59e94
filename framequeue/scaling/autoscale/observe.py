"""Observing the queue for the autoscaler: what its load is, read from the broker and the job store."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

from framequeue.brokers.base import Broker
from framequeue.jobs import JobStatus
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
    (`host:pid`) say which of this host's workers are busy."""

    def __init__(self, broker: Broker, store: JobStateStore | None = None, host: str | None = None) -> None:
        self.broker, self.store = broker, store
        self.host = host or socket.gethostname()

    def __call__(self) -> QueueLoad:
        stats = self.broker.stats()
        waiting, in_flight = stats.ready + stats.delayed, stats.in_flight
        if self.store is None:
            return QueueLoad(waiting, in_flight)
        running = self.store.list_jobs(JobStatus.RUNNING, limit=RUNNING_COUNT_CAP)
        busy: set[int] = set()
        for job in running:
            host, _, pid = (job.lease_owner or "").rpartition(":")
            if host == self.host and pid.isdigit():
                busy.add(int(pid))
        return QueueLoad(waiting, max(in_flight, len(running)), frozenset(busy))
