"""Webhook outbox dispatcher: delivers the events the job store wrote with each terminal state.

At least once, always with the event's id as webhook-id; each attempt is timestamped and signed afresh.
An event whose URL is an object location (`s3://…`: a job's failure document, as SageMaker writes one
to its S3FailurePath) is written there instead, once: an object already there counts as delivered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Protocol

from framequeue.errors import FrameQueueError, ObjectExists
from framequeue.notify.ssrf import Resolver, resolve_host
from framequeue.notify.webhooks import DeliveryResult, backoff_s, deliver, signed_headers

__all__ = ["ENDPOINT_DISABLED", "Delivery", "DisabledWebhook", "Dispatcher", "OutboxEvent", "OutboxStore"]

log = logging.getLogger(__name__)

#: due events fetched per run_once, per delivery thread: enough to keep the threads busy, small enough
#: that a batch full of hanging receivers still ends within a few timeouts
_EVENTS_PER_THREAD = 4
#: last_error of an event not sent because its endpoint answered 410 Gone earlier
ENDPOINT_DISABLED = "endpoint disabled (410)"


@dataclass(frozen=True)
class OutboxEvent:
    """One webhook event waiting in the outbox."""

    #: the webhook-id, stable across retries, e.g. "evt_<job id>_<status>"
    id: str
    job_id: str
    url: str
    #: the endpoint's "whsec_…" secret; never logged
    secret: str
    #: JSON body, fixed when the event was written
    payload: bytes
    #: deliveries tried so far
    attempts: int
    #: epoch seconds
    next_attempt_at_s: float


@dataclass(frozen=True)
class Delivery:
    """An outbox event as its job's owner sees it (GET /v1/jobs/{id}/deliveries): never the secret."""

    id: str
    job_id: str
    url: str
    payload: bytes
    attempts: int
    #: epoch seconds; when a pending event is tried next
    next_attempt_at_s: float
    delivered_at_s: float | None
    dead: bool
    last_error: str | None


@dataclass(frozen=True)
class DisabledWebhook:
    """A (tenant, URL) that answered 410 Gone: no event is sent to it, no submit may name it, until enabled."""

    tenant: str
    url: str
    #: epoch seconds
    disabled_at_s: float
    #: the event whose delivery got the 410
    event_id: str


class OutboxStore(Protocol):
    """Where events wait; the dispatcher calls it from one thread at a time (the one in run_once).

    An event is pending until marked delivered or dead. ``due_events`` returns pending events with
    ``next_attempt_at_s <= now_s``, oldest due first, at most ``limit``. ``mark_retry`` records a failed
    attempt and when to try next; ``mark_dead`` records the last failed attempt; ``error`` is safe to
    store and show (no secret or header in it). Several dispatchers may share a store: an event may then
    be delivered twice, which at-least-once delivery allows (receivers deduplicate on webhook-id).
    """

    def due_events(self, now_s: float, limit: int) -> list[OutboxEvent]: ...

    def mark_delivered(self, event_id: str, now_s: float) -> None: ...

    def mark_retry(self, event_id: str, attempts: int, next_attempt_at_s: float, error: str) -> None: ...

    def mark_dead(self, event_id: str, attempts: int, error: str) -> None: ...

    def disable_endpoint(self, event_id: str, attempts: int, error: str, now_s: float) -> None:
        """Like mark_dead, and the event's endpoint (its job's tenant and the event's URL) is disabled: the
        endpoint's other pending events end dead with ENDPOINT_DISABLED, and so do later ones when written."""
        ...


class Dispatcher:
    """Delivers due outbox events in parallel and records each outcome in the store."""

    def __init__(
        self,
        store: OutboxStore,
        *,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 10.0,
        allow_private: bool = False,
        max_parallel: int = 8,
        resolve: Resolver = resolve_host,
        write_document: Callable[[str, bytes], None] | None = None,
        before_send: Callable[[], None] = lambda: None,
    ) -> None:
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
        self._store = store
        #: epoch seconds; called from delivery threads too, so it must be thread-safe
        self._clock = clock
        self._timeout_s = timeout_s
        self._allow_private = allow_private
        self._max_parallel = max_parallel
        self._resolve = resolve
        #: writes a payload to an object location, create-only (ObjectExists when it is there already)
        self._write_document = write_document
        #: called before each delivery attempt (the fault tests' crash point "before_webhook")
        self._before_send = before_send

    def run_once(self) -> int:
        """Try every due event once (up to a batch); returns how many were tried.

        Blocks until all attempts have finished: about ``timeout_s`` at worst per round of threads.
        """
        events = self._store.due_events(self._clock(), self._max_parallel * _EVENTS_PER_THREAD)
        if not events:
            return 0
        # Threads only deliver; outcomes are recorded here, so the store never sees two threads.
        with ThreadPoolExecutor(self._max_parallel, thread_name_prefix="webhook") as pool:
            futures: dict[Future[DeliveryResult], OutboxEvent] = {
                pool.submit(self._attempt, event): event for event in events
            }
            for future in as_completed(futures):
                event = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # a bug must cost one retry, not the dispatcher
                    log.exception("webhook %s: delivery raised", event.id)
                    result = DeliveryResult(
                        None, ok=False, retry=True, disable=False, error=type(exc).__name__
                    )
                self._record(event, result)
        return len(events)

    def run_forever(self, stop: threading.Event, interval_s: float = 1.0) -> None:
        """Call run_once until stop is set, pausing interval_s when nothing was due."""
        while not stop.is_set():
            tried = 0
            try:
                tried = self.run_once()
            except Exception:  # e.g. the store is briefly unreachable: keep going
                log.exception("webhook dispatcher: run_once failed")
            if tried == 0:
                stop.wait(interval_s)

    def _attempt(self, event: OutboxEvent) -> DeliveryResult:
        self._before_send()
        if not event.url.startswith(("https://", "http://")):
            return self._write(event)
        # webhook-timestamp is this attempt's time: receivers refuse stale timestamps (replay protection)
        headers = signed_headers(event.secret, event.id, int(self._clock()), event.payload)
        return deliver(
            event.url,
            event.payload,
            headers,
            timeout_s=self._timeout_s,
            allow_private=self._allow_private,
            resolve=self._resolve,
        )

    def _write(self, event: OutboxEvent) -> DeliveryResult:
        if self._write_document is None:
            return DeliveryResult(None, ok=False, retry=False, disable=True, error="no object store for documents")
        try:
            self._write_document(event.url, event.payload)
        except ObjectExists:  # an earlier attempt wrote it: delivered
            pass
        except FrameQueueError as exc:
            return DeliveryResult(None, ok=False, retry=exc.retryable or exc.http_status >= 500,
                                  disable=not (exc.retryable or exc.http_status >= 500), error=exc.code)
        return DeliveryResult(None, ok=True, retry=False, disable=False, error="")

    def _record(self, event: OutboxEvent, result: DeliveryResult) -> None:
        attempts = event.attempts + 1
        if result.ok:
            self._store.mark_delivered(event.id, self._clock())
            log.info("webhook %s delivered (job %s, attempt %d)", event.id, event.job_id, attempts)
            return
        delay_s = None if result.disable else backoff_s(attempts)
        if result.status_code == 410:  # the receiver is gone for good: its endpoint, not just this event
            self._store.disable_endpoint(event.id, attempts, result.error, self._clock())
            log.warning("webhook %s: receiver answered 410 Gone; endpoint disabled for job %s's tenant",
                        event.id, event.job_id)
        elif delay_s is None:
            self._store.mark_dead(event.id, attempts, result.error)
            log.warning("webhook %s dead after %d attempts: %s", event.id, attempts, result.error)
        else:
            self._store.mark_retry(event.id, attempts, self._clock() + delay_s, result.error)
            log.info(
                "webhook %s attempt %d failed, retry in %g s: %s", event.id, attempts, delay_s, result.error
            )
