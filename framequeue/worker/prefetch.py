"""Prefetch 1: the worker receives its next message while the job in hand commits.

Only a message already waiting is taken early (the receive ahead does not wait: a message published
during a long commit goes to an idle worker, not to this busy one); it is invisible to other consumers
for its visibility, and the job's lease is taken at its claim, as for any message. A message received
ahead and not handled (drain, --max-jobs reached, the worker stopping) goes back to the queue with a nack.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import Future, ThreadPoolExecutor

from framequeue.brokers.base import Broker, Message

log = logging.getLogger("framequeue.worker")

#: how long the receive ahead waits for a message: not at all
AHEAD_WAIT_S = 0.0


class Prefetch:
    """One receive at a time, started ahead (`start`) or on demand (`next`)."""

    def __init__(self, broker: Broker, visibility_s: float, wait_s: float) -> None:
        self._broker = broker
        #: each receive's visibility (the lease) and longest wait
        self._visibility_s, self._wait_s = visibility_s, wait_s
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="fq-prefetch")
        self._pending: Future[Message | None] | None = None

    def start(self) -> None:
        """Begin taking a waiting message in the background, unless a receive is under way."""
        if self._pending is None:
            self._pending = self._pool.submit(self._broker.receive, self._visibility_s, AHEAD_WAIT_S)

    def next(self) -> Message | None:
        """The message received ahead, else one received now; None when none came within the wait. A
        receive's error is raised here, as a plain receive's would be."""
        pending, self._pending = self._pending, None
        if pending is not None:
            message = pending.result()
            if message is not None:
                return message
        return self._broker.receive(visibility_s=self._visibility_s, wait_s=self._wait_s)

    def give_back(self) -> None:
        """Nack the message received ahead, if any (waits for a receive under way)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            message = pending.result()
        except Exception as exc:
            log.warning("prefetch: the receive ahead failed: %s: %s", type(exc).__name__, exc)
            return
        if message is not None:
            try:
                self._broker.nack(message)
            except Exception as exc:  # its visibility runs out and it comes back by itself
                log.warning("job %s: the message received ahead could not be handed back: %s", message.job_id, exc)

    def close(self) -> None:
        self.give_back()
        with contextlib.suppress(Exception):
            self._pool.shutdown(wait=True)


__all__ = ["Prefetch"]
