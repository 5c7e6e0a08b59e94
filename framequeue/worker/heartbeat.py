"""The lease heartbeat: while a job is in hand, its lease in the job store and its message's visibility in
the broker are renewed from threads of their own, so no work in the worker can starve them."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

from framequeue.brokers.base import Message
from framequeue.errors import LeaseLost
from framequeue.jobs import Job
from framequeue.runtime import Runtime

log = logging.getLogger("framequeue.worker")


class Beat:
    """One job's view of the heartbeat: whether its lease was lost or a cancel was asked for."""

    def __init__(self, job: Job, message: Message) -> None:
        self.job, self.message = job, message
        self.lost = threading.Event()
        self.cancel_requested = threading.Event()


class Heartbeat:
    """Renews the lease of the job in hand every heartbeat_s, in a thread of its own, so no work in the
    supervisor can starve it; sets the job's `lost` when the lease no longer holds. The broker message's
    visibility is extended from a second thread: a slow or blackholed broker must never delay a lease
    renewal. Both threads live as long as the worker and serve one job after another."""

    def __init__(self, rt: Runtime, clock: Callable[[], float]) -> None:
        self._rt, self._clock = rt, clock
        self._current: Beat | None = None
        #: held while a renewal is in flight, so that the job's commit never races its last renewal
        self._renewing = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._renew_lease, name="lease", daemon=True),
            threading.Thread(target=self._extend_message, name="visibility", daemon=True),
        ]
        for t in self._threads:
            t.start()

    @contextlib.contextmanager
    def tracking(self, job: Job, message: Message) -> Iterator[Beat]:
        beat = Beat(job, message)
        self._current = beat
        try:
            yield beat
        finally:
            with self._renewing:
                self._current = None

    def close(self) -> None:
        self._stop.set()
        self._threads[0].join()
        # the broker thread may sit in a slow call; it is a daemon and holds nothing a job needs
        self._threads[1].join(timeout=1.0)

    def _renew_lease(self) -> None:
        s = self._rt.settings
        while not self._stop.wait(s.heartbeat_s):
            with self._renewing:
                beat = self._current
                if beat is None or beat.lost.is_set():
                    continue
                try:
                    if self._rt.store.renew(beat.job.id, beat.job.lease_token, s.lease_s, self._clock()):
                        beat.cancel_requested.set()
                except LeaseLost:
                    log.warning("job %s: lease lost (heartbeat)", beat.job.id)
                    beat.lost.set()
                except Exception:  # a store hiccup: try again next beat, the lease has slack
                    log.exception("job %s: lease renewal failed", beat.job.id)

    def _extend_message(self) -> None:
        s = self._rt.settings
        while not self._stop.wait(s.heartbeat_s):
            beat = self._current
            if beat is None or beat.lost.is_set():
                continue
            try:
                self._rt.broker.extend(beat.message, s.lease_s)
            except Exception as exc:  # the lease in the store decides; the message may come back, harmlessly
                log.warning("job %s: could not extend the message's visibility: %s", beat.job.id, exc)


__all__ = ["Beat", "Heartbeat"]
