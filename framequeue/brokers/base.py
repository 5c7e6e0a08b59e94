"""The Broker protocol: transport for job ids, at-least-once. The job store, not the broker, is the truth.

Every backend takes its queue name from the URL's `queue` query parameter (default "framequeue"), so
several deployments or test runs can share one broker.

A received message is invisible to other consumers for `visibility_s`; `extend` pushes that further
(the worker does it with each lease heartbeat), `ack` removes it, `nack` makes it visible again after
`delay_s`. A message whose consumer died comes back by itself when its visibility runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol


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


class Broker(Protocol):
    #: how an unacked message comes back: when its visibility runs out ("visibility": SQLite, PostgreSQL,
    #: Redis via XAUTOCLAIM, NATS AckWait), or only when its consumer's connection closes ("connection":
    #: RabbitMQ, whose heartbeat closes a paused consumer's connection). Either way the job store's lease
    #: and the reaper decide who runs a job; the broker only carries its id.
    redelivery: ClassVar[Literal["visibility", "connection"]]

    def publish(self, job_id: str) -> None: ...

    def publish_many(self, job_ids: Sequence[str]) -> None:
        """Publish several ids in as few round trips as the broker allows; returns once the broker holds
        every one. On an error some may be published already (a duplicate is harmless: the claim turns it
        away). This default, for a broker that does not batch, publishes one at a time."""
        for job_id in job_ids:
            self.publish(job_id)

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
