"""One attempt of one claimed job: fetch its input, run it in the warm media child, conclude, commit.

While the child works, the worker writes the job's progress and enforces cancel, timeout and drain. Every
write is fenced by the lease token: an attempt that lost its lease can neither report nor commit, and its
uploads are dropped.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framequeue.brokers.base import Message
from framequeue.config import crashpoint
from framequeue.endpoints.routing import pick_endpoint
from framequeue.errors import (
    AttemptsExhausted,
    FrameQueueError,
    InputNotFound,
    JobTimeout,
    LeaseLost,
    NoEndpoint,
    NotFound,
    ObjectExists,
)
from framequeue.jobs import (
    CANCELLED_BY_REQUEST,
    Job,
    JobError,
    JobProgress,
    JobStatus,
    RunTotals,
    attempt_output_key,
    failure_key,
    output_prefix,
)
from framequeue.media.limits import MediaLimits
from framequeue.metrics import STAGES, WorkerMetrics
from framequeue.models.remote import HealthChecks
from framequeue.pipelines.base import RunResult, reads_input_in_place
from framequeue.pipelines.registry import get_pipeline
from framequeue.runtime import Runtime
from framequeue.worker.heartbeat import Beat, Heartbeat
from framequeue.worker.inputs import COPY_CHUNK_BYTES, fetch_input, scratch_copy
from framequeue.worker.messages import ChildSpec, Done, Failed, Progress
from framequeue.worker.sandbox import scratch_full
from framequeue.worker.warm_child import WarmChild, died

log = logging.getLogger("framequeue.worker")

#: how often the worker looks at the child, and writes progress to the job store (the first write waits a
#: little: most short jobs are done by then, and their commit carries the final progress)
POLL_S = 0.2
PROGRESS_EVERY_S = 1.0
FIRST_PROGRESS_S = 0.5
#: a job's CPU-time budget in its media child is timeout_s x (threads + CPU_EXTRA_THREADS) + CPU_SLACK_S:
#: the stages' native pools hold at most threads + 2 busy threads, so only a runaway passes it (a backstop
#: to the wall-clock timeout, which a paused or lost supervisor no longer enforces)
CPU_EXTRA_THREADS = 2
CPU_SLACK_S = 10.0


class Stop(enum.Enum):
    """The worker, not the job, ended the attempt."""

    #: the job's cancel was asked for
    CANCEL = "cancel"
    #: the worker is draining and the job did not finish within drain_s: back to the queue
    HANDBACK = "handback"


#: how an attempt's run in the media child ended
Reply = Done | Failed | Stop


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery, for logs and tests."""

    job_id: str
    status: str
    detail: str = ""
    #: the message was acked in the job's terminal transaction (store and queue in one database)
    acked: bool = False


def eta_s(frames_done: int, frames_total: int | None, fps: float) -> float | None:
    """Seconds left at the current rate; None when unknown."""
    if frames_total is None or fps <= 0:
        return None
    return max(0, frames_total - frames_done) / fps


def run_totals(result: RunResult) -> RunTotals:
    """What the run amounted to, as the job record keeps it: the pipeline's seconds of video, its event count
    (all of them; None for a pipeline without events), and its boxes when it counts them (stats["detections"])."""
    detections = result.stats.get("detections")
    return RunTotals(result.video_s, result.events_total, None if detections is None else int(detections))


def _reads_in_place(pipeline: str) -> bool:
    """Whether the job's pipeline reads its input in place; False for one this worker cannot load (the
    media child reports that as the job's error)."""
    try:
        return reads_input_in_place(get_pipeline(pipeline))
    except FrameQueueError:
        return False


def job_error(error: FrameQueueError) -> JobError:
    return JobError(error.code, error.message)


def deliver_answer(rt: Runtime, job: Job, path: Path) -> None:
    """Write the job's answer (the file at `path`) to its output location, once: an earlier attempt or stitch
    that got there first (it crashed or lost its lease after writing) wrote the same job's answer, which stays."""
    assert job.output_uri is not None
    objects, key = rt.service.locations.resolve(job.output_uri)
    try:
        with open(path, "rb") as src, objects.open_write(key, create_only=True) as dst:
            shutil.copyfileobj(src, dst, COPY_CHUNK_BYTES)
    except ObjectExists:
        log.info("job %s: %s was written by an earlier attempt; kept", job.id, job.output_uri)


class Attempts:
    """Runs the worker's attempts, one job at a time, in its warm media child."""

    def __init__(self, rt: Runtime, child: WarmChild, heartbeat: Heartbeat, metrics: WorkerMetrics, *,
                 clock: Callable[[], float], draining: threading.Event,
                 on_concluding: Callable[[], None] | None = None) -> None:
        self.rt, self.settings = rt, rt.settings
        self._child, self._heartbeat, self.metrics = child, heartbeat, metrics
        self._clock, self._draining = clock, draining
        #: called once the media work is over, before the commit (the loop prefetches its next message)
        self._on_concluding = on_concluding
        #: readiness of remote model endpoints, asked at most every few seconds
        self._health = HealthChecks()
        #: whether this attempt's message may be acked in its terminal transaction (run's ack_in_tx)
        self._ack_in_tx = True

    def run(self, job: Job, message: Message, scratch: Path, *, ack_in_tx: bool = True) -> Outcome:
        """The attempt, from fetch to commit; LeaseLost when the lease ran out under it. `ack_in_tx`: the
        message may be acked in the job's terminal transaction (False when the message goes back after the run:
        fair share ran another job in its turn and could not publish its own again)."""
        self._ack_in_tx = ack_in_tx
        out_dir = scratch / "out"
        with self._heartbeat.tracking(job, message) as beat:
            try:
                out_dir.mkdir(parents=True, exist_ok=True)
                input_path = self._fetch(job, scratch)
            except NotFound:
                gone = InputNotFound(f"the input {job.input_key} is gone from the store")
                return self._fail(job, job_error(gone), message)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return self._fail(job, job_error(scratch_full(exc)), message)
            reply: Reply
            try:
                model_url = self._model_url(job)
            except NoEndpoint as exc:  # retryable: an endpoint of the job's version may come back
                reply = Failed.of(exc)
            else:
                spec = ChildSpec(
                    pipeline=job.pipeline, params=job.params, input_path=input_path, output_dir=out_dir,
                    model_repo=Path(self.settings.model_repo), threads=self.settings.worker_threads,
                    limits=MediaLimits(), model_url=model_url,
                )
                reply = self._supervise(job, spec, beat)
            if isinstance(reply, Done) and beat.lost.is_set():  # no upload for a commit that would be refused
                raise LeaseLost(f"job {job.id}: lease expired before the commit")
        if self._on_concluding is not None:
            self._on_concluding()
        return self._conclude(job, reply, out_dir, message)

    def drop_outputs(self, job: Job) -> None:
        """This attempt's uploads, after it lost its lease: they are not the job's results."""
        prefix = f"{output_prefix(job.id)}attempt-{job.lease_token}/"
        for key in self.rt.objects.list(prefix):
            self.rt.objects.delete(key)

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
        """The input as a local file (framequeue.worker.inputs): in place when the pipeline reads it there,
        else the claim's copy (the split phase's, when it fetched one)."""
        started = time.monotonic()
        path = fetch_input(self.rt, job, scratch, in_place=_reads_in_place(job.pipeline))
        if path == scratch_copy(job, scratch):  # the fetch stage times copies only
            self.metrics.stage_s.labels("fetch").inc(time.monotonic() - started)
        return path

    def _supervise(self, job: Job, spec: ChildSpec, beat: Beat) -> Reply:
        """Run the job in the warm child to its end; returns the child's final message, or what stopped it.
        The child is kept for the next job only when this one ended cleanly."""
        child = self._child.get()
        started = time.monotonic()
        cpu_budget_s = job.timeout_s * (spec.threads + CPU_EXTRA_THREADS) + CPU_SLACK_S
        child.run(dataclasses.replace(spec, cpu_budget_s=cpu_budget_s))
        progress = JobProgress()
        next_report = started + FIRST_PROGRESS_S
        # job.progress webhook events ride on progress writes, at most one per FQ_WEBHOOK_PROGRESS_S
        event_every_s = self.settings.webhook_progress_s
        next_event = started + event_every_s if event_every_s > 0 and job.webhook_url else float("inf")
        drain_deadline: float | None = None
        #: set only by the child's own final message: anything else left it mid-job
        final: Done | Failed | None = None
        try:
            while True:
                msg = child.poll(POLL_S)
                if isinstance(msg, Progress):
                    elapsed = max(1e-6, time.monotonic() - started)
                    fps = msg.frames_done / elapsed
                    progress = JobProgress(msg.frames_done, msg.frames_total, fps,
                                           eta_s(msg.frames_done, msg.frames_total, fps))
                elif msg is not None:
                    final = msg
                    return final
                elif not child.is_alive():
                    msg = child.poll(0)  # the last message may have raced the exit
                    if msg is not None and not isinstance(msg, Progress):
                        final = msg
                        return final
                    return died(job.attempts, child.exitcode)
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
                    return Stop.CANCEL
                if now - started > job.timeout_s:
                    return Failed.of(JobTimeout(f"the job ran longer than its timeout_s of {job.timeout_s:.0f} s"))
                if self._draining.is_set():
                    drain_deadline = drain_deadline or now + self.settings.drain_s
                    if now >= drain_deadline:
                        return Stop.HANDBACK
        finally:
            if not child.reusable_after(final):
                self._child.retire()

    def _finish(self, job: Job, status: JobStatus, message: Message, **kwargs: Any) -> bool:
        """store.finish; where the store and the queue share a database, the message's ack joins its
        transaction (returns True: acked)."""
        shared = self.rt.service.shared
        if shared is None or not self._ack_in_tx:
            self.rt.store.finish(job.id, job.lease_token, status, self._clock(), **kwargs)
            return False
        shared.store.finish(job.id, job.lease_token, status, self._clock(), then=shared.acking(message), **kwargs)
        return True

    def _conclude(self, job: Job, reply: Reply, out_dir: Path, message: Message) -> Outcome:
        now_s = self._clock
        if isinstance(reply, Done):
            return self._commit(job, reply.result, out_dir, message)
        if reply is Stop.CANCEL:
            acked = self._finish(job, JobStatus.CANCELLED, message, error=CANCELLED_BY_REQUEST)
            return Outcome(job.id, "cancelled", acked=acked)
        if reply is Stop.HANDBACK:
            self.rt.store.release(job.id, job.lease_token, now_s(), count_attempt=False)
            self.rt.service.publish(job.id, job.priority)
            return Outcome(job.id, "handed_back", "worker draining")
        error = JobError(reply.code, reply.message)
        if reply.retryable and job.attempts < job.max_attempts:
            self.rt.store.release(job.id, job.lease_token, now_s(), count_attempt=True, error=error)
            self.rt.service.publish(job.id, job.priority)
            return Outcome(job.id, "retry", f"{reply.code}: {reply.message}")
        if reply.retryable:
            last = f"failed in all {job.max_attempts} attempts; last: {reply.code}: {reply.message}"
            error = job_error(AttemptsExhausted(last))
        return self._fail(job, error, message)

    def _commit(self, job: Job, result: RunResult, out_dir: Path, message: Message) -> Outcome:
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
        acked = self._finish(job, JobStatus.SUCCEEDED, message, outputs=outputs, progress=final,
                             events=result.events, totals=run_totals(result))
        crashpoint(self.settings, "after_commit")
        self._drop_stale_outputs(job, keep=set(outputs.values()))
        detail = f"{result.frames_total} frames, {result.stats.get('wall_s', 0.0):.1f} s"
        return Outcome(job.id, "succeeded", detail, acked=acked)

    def _record_stats(self, result: RunResult) -> None:
        stats = result.stats
        for stage in STAGES:
            if f"{stage}_s" in stats:
                self.metrics.stage_s.labels(stage).inc(stats[f"{stage}_s"])
        if stats.get("batches"):
            self.metrics.model_latency_s.observe(stats.get("infer_s", 0.0) / stats["batches"])
        self.metrics.frames.inc(result.frames_total)

    def _deliver(self, job: Job, path: Path) -> None:
        deliver_answer(self.rt, job, path)

    def _fail(self, job: Job, error: JobError, message: Message) -> Outcome:
        body = {"job_id": job.id, "attempt": job.attempts, "error": {"code": error.code, "message": error.message}}
        self.rt.store.renew(job.id, job.lease_token, self.settings.lease_s, self._clock())
        self.rt.objects.put(failure_key(job.id), json.dumps(body, indent=2).encode())
        acked = self._finish(job, JobStatus.FAILED, message, error=error)
        return Outcome(job.id, "failed", f"{error.code}: {error.message}", acked=acked)

    def _drop_stale_outputs(self, job: Job, keep: set[str]) -> None:
        """Outputs of earlier attempts (a worker that died after uploading) are not the job's results."""
        if job.lease_token == 1:
            return  # the job's first claim: no earlier attempt could have uploaded anything
        for key in self.rt.objects.list(output_prefix(job.id)):
            if key not in keep:
                self.rt.objects.delete(key)


__all__ = ["Attempts", "Outcome", "Reply", "Stop", "eta_s", "run_totals"]
