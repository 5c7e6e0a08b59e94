"""An in-process broker: a real implementation of the Broker contract for one process (tests, embedded
use with threads). Brokers opened with the same `memory://NAME` share one queue.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from framequeue.brokers.base import Message, QueueStats, lanes_of
from framequeue.brokers.urls import parse_broker_url
from framequeue.jobs import PRIORITIES, Priority, lane_rank


@dataclass
class _Entry:
    seq: int
    job_id: str
    enqueued_at_s: float
    visible_at_s: float
    priority: Priority = Priority.NORMAL
    deliveries: int = 0
    receipt: str | None = None


class _Queue:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.entries: dict[int, _Entry] = {}
        self.dead: list[str] = []
        self.seq = itertools.count(1)


_queues: dict[str, _Queue] = {}
_queues_lock = threading.Lock()


def _queue(name: str) -> _Queue:
    with _queues_lock:
        if name not in _queues:
            _queues[name] = _Queue()
        return _queues[name]


class MemoryBroker:
    redelivery: ClassVar[Literal["visibility", "connection"]] = "visibility"

    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic) -> None:
        opts = parse_broker_url(url)
        name = urlsplit(opts.server_url).netloc or opts.queue
        self._q = _queue(f"{name}/{opts.queue}")
        self._max_deliveries = opts.max_deliveries
        self._low_max_wait_s = opts.low_max_wait_s
        #: the lanes receive takes from
        self._lanes = frozenset(opts.lanes)
        self._clock = clock
        self._closed = False

    def publish(self, job_id: str, priority: Priority = Priority.NORMAL) -> None:
        self.publish_many([job_id], [priority])

    def publish_many(self, job_ids: Sequence[str], priorities: Sequence[Priority] | None = None) -> None:
        lanes = lanes_of(job_ids, priorities)
        with self._q.cond:
            now = self._clock()
            for job_id, priority in zip(job_ids, lanes, strict=True):
                seq = next(self._q.seq)
                self._q.entries[seq] = _Entry(seq, job_id, now, now, priority)
            self._q.cond.notify_all()

    def receive(self, visibility_s: float, wait_s: float) -> Message | None:
        deadline = self._clock() + wait_s
        with self._q.cond:
            while not self._closed:
                now = self._clock()
                entry = self._next_visible(now)
                if entry is not None:
                    entry.deliveries += 1
                    entry.receipt = secrets.token_hex(8)
                    entry.visible_at_s = now + visibility_s
                    return Message(f"{entry.seq}:{entry.receipt}", entry.job_id, entry.deliveries)
                if now >= deadline:
                    return None
                # wake for a publish, or when the next invisible message comes due
                due = min((e.visible_at_s for e in self._q.entries.values()), default=deadline)
                self._q.cond.wait(max(0.0, min(deadline, due) - now))
        return None

    def _next_visible(self, now: float) -> _Entry | None:
        visible = [e for e in self._q.entries.values() if e.visible_at_s <= now and e.priority in self._lanes]
        visible.sort(key=lambda e: (lane_rank(e.priority, now - e.enqueued_at_s, self._low_max_wait_s), e.seq))
        for entry in visible:
            seq = entry.seq
            if entry.deliveries >= self._max_deliveries:
                del self._q.entries[seq]
                self._q.dead.append(entry.job_id)
                continue
            return entry
        return None

    def _held(self, message: Message) -> _Entry | None:
        seq, _, receipt = message.receipt.partition(":")
        entry = self._q.entries.get(int(seq))
        return entry if entry is not None and entry.receipt == receipt else None

    def ack(self, message: Message) -> None:
        with self._q.cond:
            entry = self._held(message)
            if entry is not None:
                del self._q.entries[entry.seq]

    def nack(self, message: Message, delay_s: float = 0.0) -> None:
        with self._q.cond:
            entry = self._held(message)
            if entry is not None:
                entry.receipt = None
                entry.visible_at_s = self._clock() + delay_s
                self._q.cond.notify_all()

    def extend(self, message: Message, visibility_s: float) -> None:
        with self._q.cond:
            entry = self._held(message)
            if entry is not None:
                entry.visible_at_s = self._clock() + visibility_s

    def stats(self) -> QueueStats:
        with self._q.cond:
            now = self._clock()
            entries = list(self._q.entries.values())
            ready = [e for e in entries if e.visible_at_s <= now]
            return QueueStats(
                ready=len(ready),
                in_flight=sum(1 for e in entries if e.visible_at_s > now and e.receipt is not None),
                delayed=sum(1 for e in entries if e.visible_at_s > now and e.receipt is None),
                dead=len(self._q.dead),
                oldest_ready_age_s=max((now - e.enqueued_at_s for e in ready), default=0.0),
                waiting_by_priority={
                    lane: sum(1 for e in entries if e.priority is lane and (e.visible_at_s <= now or e.receipt is None))
                    for lane in PRIORITIES
                },
            )

    def take_dead(self, limit: int) -> list[str]:
        with self._q.cond:
            taken, self._q.dead[:] = self._q.dead[:limit], self._q.dead[limit:]
            return taken

    def close(self) -> None:
        with self._q.cond:
            self._closed = True
            self._q.cond.notify_all()
