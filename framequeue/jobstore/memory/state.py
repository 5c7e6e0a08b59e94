"""The tables of an in-memory job store, and the lock every operation holds. Stores opened with the same
`memory://NAME` in one process share one State (as an API and its in-process workers share a database)."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from framequeue.endpoints.async_endpoints import Endpoint
from framequeue.endpoints.routing import ModelEndpoint
from framequeue.errors import InvalidParams
from framequeue.jobs import Job
from framequeue.notify.events import PayloadRenderer
from framequeue.notify.outbox import Delivery, DisabledWebhook, OutboxEvent
from framequeue.tenants.auth import ApiKey


@dataclass
class JobEntry:
    job: Job
    #: submission order (newest first in listings)
    seq: int
    request_hash: str | None
    #: epoch seconds the broker confirmed the job's message; None until then, and again after a requeue
    published_at_s: float | None = None


@dataclass
class OutboxEntry:
    id: str
    job_id: str
    url: str
    secret: str
    payload: bytes
    next_attempt_at_s: float
    created_at_s: float
    attempts: int = 0
    delivered_at_s: float | None = None
    dead: bool = False
    last_error: str | None = None

    def event(self) -> OutboxEvent:
        return OutboxEvent(self.id, self.job_id, self.url, self.secret, self.payload, self.attempts,
                           self.next_attempt_at_s)

    def delivery(self) -> Delivery:
        return Delivery(self.id, self.job_id, self.url, self.payload, self.attempts, self.next_attempt_at_s,
                        self.delivered_at_s, self.dead, self.last_error)


@dataclass
class State:
    #: reentrant: a terminal transition writes its outbox rows under the lock its caller took
    lock: threading.RLock = field(default_factory=threading.RLock)
    jobs: dict[str, JobEntry] = field(default_factory=dict)
    #: idempotency key -> job id
    keys: dict[str, str] = field(default_factory=dict)
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    #: in insertion order
    outbox: dict[str, OutboxEntry] = field(default_factory=dict)
    disabled: dict[tuple[str, str], DisabledWebhook] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    model_endpoints: dict[str, ModelEndpoint] = field(default_factory=dict)
    api_keys: dict[str, ApiKey] = field(default_factory=dict)
    #: (lane, tenant) -> fair-share tag; (lane, CLOCK_KEY) -> the lane's clock (framequeue.tenants.fairshare)
    fair_share: dict[tuple[str, str], float] = field(default_factory=dict)


_states: dict[str, State] = {}
_states_lock = threading.Lock()


def shared_state(url: str) -> State:
    """The process's State for `memory://NAME`."""
    parts = urlsplit(url)
    if parts.scheme != "memory" or not parts.netloc:
        raise InvalidParams("a memory job store URL names its store: memory://NAME")
    with _states_lock:
        return _states.setdefault(parts.netloc, State())


class MemoryBase:
    def __init__(self, url: str, render: PayloadRenderer) -> None:
        self._state = shared_state(url)
        self._render = render
