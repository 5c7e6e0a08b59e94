"""The worker: receive a job id, claim the job with a lease, run one attempt of it, ack the message.
The next message is received while the job in hand commits (prefetch 1, framequeue.worker.prefetch).

The worker process holds the lease (framequeue.worker.heartbeat) while a media child does the
decode/infer/render work (framequeue.worker.attempt). A broker or store that goes away pauses the loop,
never ends it; drain() ends it once the job in hand is finished or handed back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from framequeue.brokers.base import Message
from framequeue.config import crashpoint
from framequeue.errors import LeaseLost
from framequeue.jobs import Job
from framequeue.metrics import WorkerMetrics
from framequeue.runtime import Runtime
from framequeue.tenants.fairshare import parse_weights
from framequeue.worker.attempt import Attempts, Outcome
from framequeue.worker.claiming import claim_for
from framequeue.worker.heartbeat import Heartbeat
from framequeue.worker.prefetch import Prefetch
from framequeue.worker.split import SplitPhases
from framequeue.worker.warm_child import WarmChild

log = logging.getLogger("framequeue.worker")

#: longest wait of one receive before the loop looks at drain and the reaper again
RECEIVE_WAIT_S = 1.0
#: after a backend error, the worker waits this long before it tries again, doubling up to the maximum
BACKEND_PAUSE_S = 0.5
MAX_BACKEND_PAUSE_S = 10.0


class Worker:
    def __init__(self, rt: Runtime, *, owner: str | None = None, clock: Callable[[], float] = time.time,
                 max_jobs: int = 0) -> None:
        self.rt = rt
        #: stop after this many handled deliveries (a Kubernetes Job per video); 0: until drained
        self.max_jobs = max_jobs
        self._handled = 0
        self.settings = rt.settings
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.draining = threading.Event()
        self._clock = clock
        self._next_reap = 0.0
        self._child = WarmChild(self.settings)
        self.metrics = WorkerMetrics()
        #: FQ_TENANT_WEIGHTS, parsed once: a malformed value stops the worker at start (InvalidParams), not
        #: every receive after it
        self._weights = parse_weights(self.settings.tenant_weights)

    def run(self) -> None:
        """Take jobs until drain() is called; the job in hand is finished or handed back first."""
        self._child.start()
        heartbeat = Heartbeat(self.rt, self._clock)
        prefetch = Prefetch(self.rt.broker, self.settings.lease_s, RECEIVE_WAIT_S)
        self._attempts = Attempts(self.rt, self._child, heartbeat, self.metrics, clock=self._clock,
                                  draining=self.draining, on_concluding=lambda: self._prefetch(prefetch))
        self._phases = SplitPhases(self.rt, heartbeat, clock=self._clock)
        if self.settings.metrics_port:
            self.metrics.serve(self.settings.metrics_port, self.settings.metrics_host)
        self.metrics.up.set(1)
        log.info("worker %s started (threads per job: %d)", self.owner, self.settings.worker_threads)
        pause_s = BACKEND_PAUSE_S
        try:
            while not self.draining.is_set():
                try:
                    self.reap_if_due()
                    message = prefetch.next()
                    if message is not None:
                        self.handle(message)
                        self._handled += 1
                    pause_s = BACKEND_PAUSE_S
                except Exception as exc:
                    # a broker or store that went away (a restart, a failover, a network cut): the job in hand,
                    # if any, comes back when its lease and its message's visibility run out; keep the worker
                    log.warning("worker %s: %s: %s; trying again in %.1f s", self.owner, type(exc).__name__, exc,
                                pause_s)
                    self.draining.wait(pause_s)
                    pause_s = min(2 * pause_s, MAX_BACKEND_PAUSE_S)
                if self.max_jobs and self._handled >= self.max_jobs:
                    log.info("worker %s: handled %d job(s), its --max-jobs; exiting", self.owner, self._handled)
                    break
        finally:
            prefetch.close()  # a message received ahead and not handled goes back
            self.metrics.up.set(0)
            heartbeat.close()
            self._child.retire()
        log.info("worker %s stopped", self.owner)

    def _prefetch(self, prefetch: Prefetch) -> None:
        """Receive the next message while the job in hand commits, unless it is the last one this worker
        takes (drain, or --max-jobs counting the job in hand)."""
        if self.draining.is_set() or (self.max_jobs and self._handled + 1 >= self.max_jobs):
            return
        prefetch.start()

    def drain(self) -> None:
        self.draining.set()

    def reap_if_due(self) -> None:
        now = time.monotonic()
        if now < self._next_reap:
            return
        self._next_reap = now + self.settings.reap_interval_s
        try:
            requeued = self.rt.service.reap()
        except Exception:
            log.exception("reaper failed")
            return
        if requeued:
            log.info("reaper returned %d job(s) with expired leases to the queue", len(requeued))

    def handle(self, message: Message) -> Outcome:
        claimed = claim_for(self.rt, message, self.owner, self.settings.lease_s, self._clock(), self._weights)
        if claimed is None:
            # ended, cancelled, or leased by another worker: the job row says so, the message is spent
            self.rt.broker.ack(message)
            self.metrics.jobs.labels("skipped").inc()
            return Outcome(message.job_id, "skipped")
        job = claimed.job
        self.metrics.busy.set(1)
        self.metrics.backlog_s.observe(max(0.0, self._clock() - job.created_at_s))
        claimed_at = time.monotonic()
        try:
            return self._handle_claimed(job, message, spent=claimed.spent)
        finally:
            self.metrics.busy.set(0)
            self.metrics.processing_s.observe(time.monotonic() - claimed_at)

    def _handle_claimed(self, job: Job, message: Message, *, spent: bool = True) -> Outcome:
        """Run the claimed job (another tenant's than the message's when the fair share says so), then ack the
        message, or nack it when its own job still waits without another message (claiming.Claimed.spent)."""
        log.info("job %s: claimed (attempt %d/%d, token %d)", job.id, job.attempts, job.max_attempts, job.lease_token)
        crashpoint(self.settings, "after_claim")
        scratch = Path(self.settings.scratch_dir) / f"{job.id}-{job.lease_token}"
        try:
            # a long video's split or stitch, or a segment whose parent ended; else the ordinary attempt
            phase = self._phases.run(job, message, scratch)
            outcome = phase if phase is not None else self._attempts.run(job, message, scratch, ack_in_tx=spent)
            if phase is None:
                self._phases.after_attempt(job, outcome)
        except LeaseLost as exc:
            log.warning("job %s: %s; this attempt's results are dropped", job.id, exc)
            self._attempts.drop_outputs(job)
            outcome = Outcome(job.id, "lease_lost", str(exc))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        crashpoint(self.settings, "before_ack")
        if not outcome.acked:  # else acked in the job's terminal transaction
            with contextlib.suppress(Exception):
                if spent:
                    self.rt.broker.ack(message)
                else:
                    self.rt.broker.nack(message)
        self.metrics.jobs.labels(outcome.status).inc()
        log.info("job %s: %s %s", job.id, outcome.status, outcome.detail)
        return outcome


__all__ = ["Worker"]
