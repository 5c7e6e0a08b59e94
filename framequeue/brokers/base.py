"""The Broker protocol: transport for job ids, at-least-once. The job store, not the broker, is the truth.

A received message is invisible to other consumers for `visibility_s`; `extend` pushes that further
(the worker does it with each lease heartbeat), `ack` removes it, `nack` makes it visible again after
`delay_s`. A message whose consumer died comes back by itself when its visibility runs out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    #: the broker's own id for this delivery, needed by ack / nack / extend
    receipt: str
    job_id: str
    #: how many times this message has been handed out, this delivery included
    deliveries: int


@dataclass(frozen=True)
class QueueStats:
    #: messages waiting to be received
    ready: int
    #: messages received and not yet acked
    in_flight: int


class Broker(Protocol):
    def publish(self, job_id: str) -> None: ...

    def receive(self, visibility_s: float, wait_s: float) -> Message | None:
        """Wait up to wait_s for a message; None when none came."""
        ...

    def ack(self, message: Message) -> None: ...

    def nack(self, message: Message, delay_s: float = 0.0) -> None: ...

    def extend(self, message: Message, visibility_s: float) -> None: ...

    def stats(self) -> QueueStats: ...

    def close(self) -> None: ...
