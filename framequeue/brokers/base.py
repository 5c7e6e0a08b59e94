"""The Broker protocol: transport for job ids, at-least-once. The job store, not the broker, is the truth.

Every backend takes its queue name from the URL's `queue` query parameter (default "framequeue"), so
several deployments or test runs can share one broker.

A received message is invisible to other consumers for `visibility_s`; `extend` pushes that further
(the worker does it with each lease heartbeat), `ack` removes it, `nack` makes it visible again after
`delay_s`. A message whose consumer died comes back by itself when its visibility runs out.

Lanes: a message is published in its job's lane (framequeue.jobs.Priority). `receive` hands out a waiting
message of a higher lane first: high, then normal, then low; within a lane, oldest first. A `low` message
that has waited `low_max_wait_s` (URL option, default framequeue.jobs.DEFAULT_LOW_MAX_WAIT_S) is served as
`normal` (anti-starvation). A message keeps its lane through nack, redelivery and dead-lettering; the
service publishes a requeued job in its own lane.

Lane-dedicated consumers: a broker opened with `lanes=high` (or `lanes=normal,low`, URL option; default every
lane) receives only from those lanes, still in the order above, anti-starvation included among them; it
publishes, acks and counts (stats) as any other. A low message served as normal stays a low one for the
filter, except on RabbitMQ, where a low message past `low_max_wait_s` moves to the normal lane's queue (the
consumers of the normal lane take it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

from framequeue.errors import InvalidParams
from framequeue.jobs import Priority


@dataclass(frozen=True)
class Message:
    #: the broker's own id for this delivery, needed by ack / nack / extend
    receipt: str
    job_id: str
    #: how many times this message has been handed out, this delivery included
    deliveries: int


@dataclass(frozen=True)
class QueueStats:
    #: messages waiting to be received now
    ready: int
    #: messages received and not yet acked
    in_flight: int
    #: messages that will become ready later (nack with delay, delayed retry)
    delayed: int = 0
    #: messages the broker gave up on (delivery limit) and holds in its dead-letter store
    dead: int = 0
    #: seconds since the oldest ready message was published (0 when none is ready; None when the broker
    #: cannot tell without disturbing the message, as RabbitMQ: the job store's oldest queued job says it)
    oldest_ready_age_s: float | None = 0.0
    #: waiting messages (ready + delayed) per lane, every lane named; None when the broker cannot tell
    waiting_by_priority: Mapping[Priority, int] | None = None


def lanes_of(job_ids: Sequence[str], priorities: Sequence[Priority] | None) -> list[Priority]:
    """The lane of each id of a publish_many (all normal without priorities); InvalidParams on a length
    mismatch."""
    if priorities is None:
        return [Priority.NORMAL] * len(job_ids)
    if len(priorities) != len(job_ids):
        raise InvalidParams(f"{len(job_ids)} job ids but {len(priorities)} priorities")
    return [Priority(p) for p in priorities]


class Broker(Protocol):
    #: how an unacked message comes back: when its visibility runs out ("visibility": SQLite, PostgreSQL,
    #: Redis via XAUTOCLAIM, NATS AckWait), or only when its consumer's connection closes ("connection":
    #: RabbitMQ, whose heartbeat closes a paused consumer's connection). Either way the job store's lease
    #: and the reaper decide who runs a job; the broker only carries its id.
    redelivery: ClassVar[Literal["visibility", "connection"]]

    def publish(self, job_id: str, priority: Priority = Priority.NORMAL) -> None: ...

    def publish_many(self, job_ids: Sequence[str], priorities: Sequence[Priority] | None = None) -> None:
        """Publish several ids (each in its lane, `priorities` in the same order; None: all normal) in as few
        round trips as the broker allows; returns once the broker holds every one. On an error some may be
        published already (a duplicate is harmless: the claim turns it away). This default, for a broker that
        does not batch, publishes one at a time."""
        for job_id, priority in zip(job_ids, lanes_of(job_ids, priorities), strict=True):
            self.publish(job_id, priority)

    def receive(self, visibility_s: float, wait_s: float) -> Message | None:
        """Wait up to wait_s for a message; None when none came."""
        ...

    def ack(self, message: Message) -> None: ...

    def nack(self, message: Message, delay_s: float = 0.0) -> None: ...

    def extend(self, message: Message, visibility_s: float) -> None: ...

    def stats(self) -> QueueStats: ...

    def take_dead(self, limit: int) -> list[str]:
        """Remove up to `limit` dead-lettered messages and return their job ids, so the reaper can end
        those jobs `failed: attempts_exhausted`. Brokers without a dead-letter store return []."""
        ...

    def close(self) -> None: ...
