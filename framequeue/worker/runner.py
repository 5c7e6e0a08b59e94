"""The worker: receive a job id, claim the job with a lease, run its pipeline in a media child, commit.

The supervising process holds the lease (heartbeat thread), writes progress, and enforces cancel, timeout
and drain; the media child does the decode/infer/render work. Every write after the claim is fenced by
the lease token, so a worker that lost its lease (paused, partitioned) can neither report nor commit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import multiprocessing as mp
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

from framequeue.brokers.base import Message
from framequeue.config import crashpoint
from framequeue.endpoints.routing import pick_endpoint
from framequeue.errors import FrameQueueError, LeaseLost, NoEndpoint, NotFound, ObjectExists
from framequeue.jobs import Job, JobError, JobProgress, JobStatus, attempt_output_key, failure_key, output_prefix
from framequeue.lease import eta_s
from framequeue.media.limits import MediaLimits
from framequeue.metrics import STAGES, WorkerMetrics
from framequeue.models.remote import HealthChecks
from framequeue.pipelines.base import RunResult
from framequeue.runtime import Runtime
from framequeue.worker.child import MediaChild
from framequeue.worker.sandbox import PRELOAD, ChildSpec

log = logging.getLogger("framequeue.worker")

#: how often the supervisor looks at the child, and writes progress to the job store (the first write
#: waits a little: most short jobs are done by then, and their commit carries the final progress)
POLL_S = 0.2
PROGRESS_EVERY_S = 1.0
FIRST_PROGRESS_S = 0.5
#: after a backend error, the worker waits this long before it tries again, doubling up to the maximum
BACKEND_PAUSE_S = 0.5
MAX_BACKEND_PAUSE_S = 10.0
#: 256 KiB: large enough to stream fast, and clear of 1 MiB-aligned writes, which some kernels handle slowly
COPY_CHUNK_BYTES = 256 * 1024
#: a job's CPU-time budget in its media child is timeout_s x (threads + CPU_EXTRA_THREADS) + CPU_SLACK_S:
#: the stages' native pools hold at most threads + 2 busy threads, so only a runaway passes it (a backstop
#: to the wall-clock timeout, which a paused or lost supervisor no longer enforces)
CPU_EXTRA_THREADS = 2
CPU_SLACK_S = 10.0
#: a media process killed by one of these crashed in native code (a decoder): the same bytes crash it
#: again, so such a job gets at most this many attempts whatever its max_attempts
NATIVE_CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT})
MAX_NATIVE_CRASH_ATTEMPTS = 2


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery, for logs and tests."""

    job_id: str
    status: str
    detail: str = ""


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
        self._mp = mp.get_context("forkserver")
        self._mp.set_forkserver_preload(PRELOAD)
        self._next_reap = 0.0
        self._child: MediaChild | None = None
        self._children_started = 0
        #: readiness of remote model endpoints, asked at most every few seconds
        self._health = HealthChecks()
        self.metrics = WorkerMetrics()

    def run(self) -> None:
        """Take jobs until drain() is called; the job in hand is finished or handed back first."""
        # start the fork server (it imports PyAV, OpenCV, ONNX Runtime) and a first media child now, not
        # on the first job's clock
        forkserver.ensure_running()
        self._warm_child()
        self._heartbeat = Heartbeat(self.rt, self._clock)
        if self.settings.metrics_port:
            self.metrics.serve(self.settings.metrics_port, self.settings.metrics_host)
        self.metrics.up.set(1)
        log.info("worker %s started (threads per job: %d)", self.owner, self.settings.worker_threads)
        pause_s = BACKEND_PAUSE_S
        try:
            while not self.draining.is_set():
                try:
                    self.reap_if_due()
                    message = self.rt.broker.receive(visibility_s=self.settings.lease_s, wait_s=1.0)
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
            self.metrics.up.set(0)
            self._heartbeat.close()
            self._retire_child()
        log.info("worker %s stopped", self.owner)

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
        job = self.rt.store.claim(message.job_id, self.owner, self.settings.lease_s, self._clock())
        if job is None:
            # ended, cancelled, or leased by another worker: the job row says so, the message is spent
            self.rt.broker.ack(message)
            self.metrics.jobs.labels("skipped").inc()
            return Outcome(message.job_id, "skipped")
        self.metrics.busy.set(1)
        self.metrics.backlog_s.observe(max(0.0, self._clock() - job.created_at_s))
        claimed_at = time.monotonic()
        try:
            return self._handle_claimed(job, message)
        finally:
            self.metrics.busy.set(0)
            self.metrics.processing_s.observe(time.monotonic() - claimed_at)

    def _handle_claimed(self, job: Job, message: Message) -> Outcome:
        log.info("job %s: claimed (attempt %d/%d, token %d)", job.id, job.attempts, job.max_attempts, job.lease_token)
        crashpoint(self.settings, "after_claim")
        scratch = Path(self.settings.scratch_dir) / f"{job.id}-{job.lease_token}"
        try:
            outcome = self._run(job, message, scratch)
        except LeaseLost as exc:
            log.warning("job %s: %s; this attempt's results are dropped", job.id, exc)
            self._drop_attempt_outputs(job)
            outcome = Outcome(job.id, "lease_lost", str(exc))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        crashpoint(self.settings, "before_ack")
        with contextlib.suppress(Exception):
            self.rt.broker.ack(message)
        self.metrics.jobs.labels(outcome.status).inc()
        log.info("job %s: %s %s", job.id, outcome.status, outcome.detail)
        return outcome

    # -- one attempt -----------------------------------------------------------------------------------

    def _run(self, job: Job, message: Message, scratch: Path) -> Outcome:
        out_dir = scratch / "out"
        with self._heartbeat.tracking(job, message) as beat:
            try:
                out_dir.mkdir(parents=True, exist_ok=True)
                input_path = self._fetch(job, scratch)
            except NotFound:
                return self._fail(job, JobError("input_not_found", f"the input {job.input_key} is gone from the store"))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                full = f"the worker's scratch disk is full: {exc.strerror}"
                return self._fail(job, JobError("resource_exhausted", full))
            try:
                model_url = self._model_url(job)
            except NoEndpoint as exc:  # retryable: an endpoint of the job's version may come back
                reply = ("error", exc.code, exc.message, exc.retryable)
            else:
                spec = ChildSpec(
                    pipeline=job.pipeline, params=job.params, input_path=input_path, output_dir=out_dir,
                    model_repo=Path(self.settings.model_repo), threads=self.settings.worker_threads,
                    limits=MediaLimits(), model_url=model_url,
                )
                reply = self._supervise(job, spec, beat)
            if reply[0] == "done" and beat.lost.is_set():  # no upload for a commit that would be refused
                raise LeaseLost(f"job {job.id}: lease expired before the commit")
        return self._conclude(job, reply, out_dir)

    def _model_url(self, job: Job) -> str | None:
        """Where this attempt runs the job's model: None in-process (no registry rows for its model version,
        or a `local` endpoint chosen), else the healthy endpoint's URL. The version was fixed at submit;
        the endpoint is chosen per attempt, failing over within the version (NoEndpoint when none is up)."""
        model, version = job.params.get("model"), job.params.get("model_version")
        if not isinstance(model, str) or not isinstance(version, int):
            return None
        rows = [ep for ep in self.rt.store.list_model_endpoints(model) if ep.version == version]
        if not rows:
            return None
        chosen = pick_endpoint(rows, version, job.id, self._health)
        log.info("job %s: %s version %d runs at %s", job.id, model, version, chosen.url)
        return None if chosen.local else chosen.url

    def _fetch(self, job: Job, scratch: Path) -> Path:
        suffix = Path(job.input_key).suffix[:10] if "." in job.input_key.rsplit("/", 1)[-1] else ""
        path = scratch / f"input{suffix}"
        if "://" in job.input_key:  # a location (an async endpoint's InputLocation)
            objects, key = self.rt.service.locations.resolve(job.input_key)
        else:
            objects, key = self.rt.objects, job.input_key
        started = time.monotonic()
        with objects.open_read(key) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, COPY_CHUNK_BYTES)
        self.metrics.stage_s.labels("fetch").inc(time.monotonic() - started)
        return path

    def _warm_child(self) -> MediaChild:
        if self._child is None or not self._child.is_alive():
            self._children_started += 1
            name = f"media-{os.getpid()}-{self._children_started}"
            self._child = MediaChild(self._mp, name, self.settings.child_max_jobs, self.settings.child_memory_mb)
        return self._child

    def _retire_child(self) -> None:
        if self._child is not None:
            self._child.stop()
            self._child = None

    def _supervise(self, job: Job, spec: ChildSpec, beat: Beat) -> tuple[Any, ...]:
        """Run the job in the warm child to its end; returns the child's final message, or a synthetic one
        for what stopped it. The child is kept for the next job only when this one ended cleanly."""
        child = self._warm_child()
        started = time.monotonic()
        cpu_budget_s = job.timeout_s * (spec.threads + CPU_EXTRA_THREADS) + CPU_SLACK_S
        child.run(dataclasses.replace(spec, cpu_budget_s=cpu_budget_s))
        progress = JobProgress()
        next_report = started + FIRST_PROGRESS_S
        # job.progress webhook events ride on progress writes, at most one per FQ_WEBHOOK_PROGRESS_S
        event_every_s = self.settings.webhook_progress_s
        next_event = started + event_every_s if event_every_s > 0 and job.webhook_url else float("inf")
        drain_deadline: float | None = None
        reply: tuple[Any, ...] = ("unfinished",)
        try:
            while True:
                msg = child.poll(POLL_S)
                if msg is not None and msg[0] == "progress":
                    elapsed = max(1e-6, time.monotonic() - started)
                    fps = msg[1] / elapsed
                    progress = JobProgress(msg[1], msg[2], fps, eta_s(msg[1], msg[2], fps))
                elif msg is not None:
                    reply = msg
                    return reply
                elif not child.is_alive():
                    msg = child.poll(0)  # the last message may have raced the exit
                    if msg is not None and msg[0] != "progress":
                        reply = msg
                        return reply
                    return self._died(job, child.exitcode)
                now = time.monotonic()
                if beat.lost.is_set():
                    raise LeaseLost(f"job {job.id}: lease expired while running")
                if now >= next_report:
                    next_report = now + PROGRESS_EVERY_S
                    event = now >= next_event
                    if event:
                        next_event = now + event_every_s
                    if self.rt.store.report_progress(job.id, job.lease_token, progress, self._clock(), event=event):
                        beat.cancel_requested.set()
                if beat.cancel_requested.is_set():
                    return ("cancel",)
                if now - started > job.timeout_s:
                    limit = f"the job ran longer than its timeout_s of {job.timeout_s:.0f} s"
                    return ("error", "timeout", limit, False)
                if self.draining.is_set():
                    drain_deadline = drain_deadline or now + self.settings.drain_s
                    if now >= drain_deadline:
                        return ("handback",)
        finally:
            # `reply` is set only by the child's own final message: anything else left it mid-job
            if not child.reusable_after(reply):
                self._retire_child()

    @staticmethod
    def _died(job: Job, exitcode: int | None) -> tuple[Any, ...]:
        """The final message for a media child that died without an answer."""
        if exitcode == -signal.SIGXCPU:
            return ("error", "resource_exhausted", "the job ran past its CPU-time limit", False)
        if exitcode is not None and exitcode < 0 and -exitcode in NATIVE_CRASH_SIGNALS:
            name = signal.Signals(-exitcode).name
            retry = job.attempts < MAX_NATIVE_CRASH_ATTEMPTS
            times = "" if retry else f" in {job.attempts} attempts; a crash on the same input repeats"
            return ("error", "worker_crashed", f"the media process crashed ({name}){times}", retry)
        return ("error", "worker_crashed", f"the media process died (exit code {exitcode})", True)

    def _conclude(self, job: Job, reply: tuple[Any, ...], out_dir: Path) -> Outcome:
        kind = reply[0]
        now_s = self._clock
        if kind == "done":
            return self._commit(job, reply[1], out_dir)
        if kind == "cancel":
            self.rt.store.finish(job.id, job.lease_token, JobStatus.CANCELLED, now_s(),
                                 error=JobError("cancelled", "cancelled by request"))
            return Outcome(job.id, "cancelled")
        if kind == "handback":
            self.rt.store.release(job.id, job.lease_token, now_s(), count_attempt=False)
            self.rt.service.publish(job.id)
            return Outcome(job.id, "handed_back", "worker draining")
        _, code, message, retryable = reply
        error = JobError(code, message)
        if retryable and job.attempts < job.max_attempts:
            self.rt.store.release(job.id, job.lease_token, now_s(), count_attempt=True)
            self.rt.service.publish(job.id)
            return Outcome(job.id, "retry", f"{code}: {message}")
        if retryable:
            last = f"failed in all {job.max_attempts} attempts; last: {code}: {message}"
            error = JobError("attempts_exhausted", last)
        return self._fail(job, error)

    def _commit(self, job: Job, result: RunResult, out_dir: Path) -> Outcome:
        self._record_stats(result)
        upload_started = time.monotonic()
        outputs: dict[str, str] = {}
        for name, filename in result.outputs.items():
            key = attempt_output_key(job.id, job.lease_token, filename)
            with open(out_dir / filename, "rb") as src, self.rt.objects.open_write(key) as dst:
                shutil.copyfileobj(src, dst, COPY_CHUNK_BYTES)
            outputs[name] = key
        if job.output_uri:
            self._deliver(job, out_dir / result.outputs[result.primary_output])
        self.metrics.stage_s.labels("upload").inc(time.monotonic() - upload_started)
        crashpoint(self.settings, "after_upload")
        final = JobProgress(result.frames_total, result.frames_total, job.progress.fps, 0.0)
        self.rt.store.finish(job.id, job.lease_token, JobStatus.SUCCEEDED, self._clock(), outputs=outputs,
                             progress=final)
        crashpoint(self.settings, "after_commit")
        self._drop_stale_outputs(job, keep=set(outputs.values()))
        detail = f"{result.frames_total} frames, {result.stats.get('wall_s', 0.0):.1f} s"
        return Outcome(job.id, "succeeded", detail)

    def _record_stats(self, result: RunResult) -> None:
        stats = result.stats
        for stage in STAGES:
            if f"{stage}_s" in stats:
                self.metrics.stage_s.labels(stage).inc(stats[f"{stage}_s"])
        if stats.get("batches"):
            self.metrics.model_latency_s.observe(stats.get("infer_s", 0.0) / stats["batches"])
        self.metrics.frames.inc(result.frames_total)

    def _deliver(self, job: Job, path: Path) -> None:
        """Write the job's answer to its output location, once: an earlier attempt that got there first
        (it crashed or lost its lease after writing) wrote the same job's answer, which stays."""
        assert job.output_uri is not None
        objects, key = self.rt.service.locations.resolve(job.output_uri)
        try:
            with open(path, "rb") as src, objects.open_write(key, create_only=True) as dst:
                shutil.copyfileobj(src, dst, COPY_CHUNK_BYTES)
        except ObjectExists:
            log.info("job %s: %s was written by an earlier attempt; kept", job.id, job.output_uri)

    def _fail(self, job: Job, error: JobError) -> Outcome:
        body = {"job_id": job.id, "attempt": job.attempts, "error": {"code": error.code, "message": error.message}}
        self.rt.store.renew(job.id, job.lease_token, self.settings.lease_s, self._clock())
        self.rt.objects.put(failure_key(job.id), json.dumps(body, indent=2).encode())
        self.rt.store.finish(job.id, job.lease_token, JobStatus.FAILED, self._clock(), error=error)
        return Outcome(job.id, "failed", f"{error.code}: {error.message}")

    def _drop_attempt_outputs(self, job: Job) -> None:
        prefix = f"{output_prefix(job.id)}attempt-{job.lease_token}/"
        for key in self.rt.objects.list(prefix):
            self.rt.objects.delete(key)

    def _drop_stale_outputs(self, job: Job, keep: set[str]) -> None:
        """Outputs of earlier attempts (a worker that died after uploading) are not the job's results."""
        if job.lease_token == 1:
            return  # the job's first claim: no earlier attempt could have uploaded anything
        for key in self.rt.objects.list(output_prefix(job.id)):
            if key not in keep:
                self.rt.objects.delete(key)


__all__ = ["FrameQueueError", "Outcome", "Worker"]
