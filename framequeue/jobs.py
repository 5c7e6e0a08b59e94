"""The Job record, its states and the legal transitions between them. Pure: no I/O."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

from framequeue.errors import (
    AttemptsExhausted,
    InvalidTransition,
    JobCancelled,
    JobExpired,
    JobTimeout,
    SegmentFailed,
)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


class Priority(StrEnum):
    """A job's lane: a worker takes a waiting job of a higher lane first (framequeue.brokers.base)."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for high, 1 for normal, 2 for low: the order lanes are served in."""
        return PRIORITIES.index(self)


#: the lanes, served in this order
PRIORITIES: tuple[Priority, ...] = (Priority.HIGH, Priority.NORMAL, Priority.LOW)
#: seconds a low job waits before it is served as normal, unless the deployment says otherwise
DEFAULT_LOW_MAX_WAIT_S = 300.0


def lane_rank(priority: Priority, waited_s: float, low_max_wait_s: float) -> int:
    """The rank a waiting message is served at: its lane's, except that a low one that has waited
    low_max_wait_s or longer ranks as normal (anti-starvation)."""
    if priority is Priority.LOW and waited_s >= low_max_wait_s:
        return Priority.NORMAL.rank
    return priority.rank


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED})

#: from -> the states it may move to; a terminal state moves nowhere
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset(
        {JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.EXPIRED, JobStatus.FAILED}
    ),
    # running -> queued: the lease expired (reaper) or the worker handed the job back (drain, retry)
    JobStatus.RUNNING: frozenset(
        {JobStatus.QUEUED, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
    JobStatus.EXPIRED: frozenset(),
}


def can_transition(src: JobStatus, dst: JobStatus) -> bool:
    return dst in TRANSITIONS[src]


def check_transition(src: JobStatus, dst: JobStatus) -> None:
    if not can_transition(src, dst):
        raise InvalidTransition(f"a {src.value} job cannot become {dst.value}")


@dataclass(frozen=True)
class JobProgress:
    frames_done: int = 0
    frames_total: int | None = None
    #: frames per second over the running attempt
    fps: float = 0.0
    eta_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        percent = None
        if self.frames_total:
            percent = round(100.0 * min(self.frames_done, self.frames_total) / self.frames_total, 1)
        return {
            "frames_done": self.frames_done,
            "frames_total": self.frames_total,
            "percent": percent,
            "fps": round(self.fps, 2),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
        }


@dataclass(frozen=True)
class JobError:
    code: str
    message: str


class Outcome(StrEnum):
    """How one attempt ended (an attempt still running has none)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: the attempt ran past the job's timeout_s
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    #: the worker died or stalled past its lease and the reaper (or another claim) took the job back
    LEASE_LOST = "lease_lost"
    #: the worker drained and gave the job back to the queue
    HANDED_BACK = "handed_back"
    #: the worker split a long video into segment jobs and parked the parent until they end (not counted)
    SPLIT = "split"


@dataclass(frozen=True)
class Attempt:
    """One claim of a job and how it ended; `attempt` counts claims from 1 (a handed-back one included)."""

    attempt: int
    worker: str
    started_at_s: float
    ended_at_s: float | None = None
    outcome: Outcome | None = None
    error: JobError | None = None

    def to_json(self) -> dict[str, Any]:
        """As stored in a job store's attempt_history column."""
        return {
            "attempt": self.attempt, "worker": self.worker, "started_at_s": self.started_at_s,
            "ended_at_s": self.ended_at_s, "outcome": None if self.outcome is None else self.outcome.value,
            "error_code": None if self.error is None else self.error.code,
            "error_message": None if self.error is None else self.error.message,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Attempt:
        error = None if d["error_code"] is None else JobError(d["error_code"], d["error_message"] or "")
        outcome = None if d["outcome"] is None else Outcome(d["outcome"])
        return cls(d["attempt"], d["worker"], d["started_at_s"], d["ended_at_s"], outcome, error)

    def to_record(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt, "worker": self.worker, "started_at": iso(self.started_at_s),
            "ended_at": iso(self.ended_at_s), "outcome": None if self.outcome is None else self.outcome.value,
            "error": None if self.error is None else {"code": self.error.code, "message": self.error.message},
        }


@dataclass(frozen=True)
class RunTotals:
    """What a successful run amounted to, committed with its outputs: the Models page divides the counts by
    the minutes of video to compare model versions (events or detections per minute of video)."""

    #: seconds of video the job processed: the frames the pipeline decoded and wrote divided by the video's
    #: average frame rate (for a full run, the container's duration to within a frame). None for a still
    #: image, a pipeline that does not process video, and a job that never succeeded
    video_s: float | None = None
    #: every event the pipeline found, those past MAX_EVENTS included; None when unknown
    events_total: int | None = None
    #: boxes over all inferred frames, for a pipeline that counts them (detect); None otherwise
    detections_total: int | None = None


@dataclass(frozen=True)
class Job:
    id: str
    pipeline: str
    pipeline_version: str
    input_key: str
    params: dict[str, Any]
    status: JobStatus
    created_at_s: float
    updated_at_s: float
    #: the queued job ends `expired` at this epoch second if no worker started it
    expires_at_s: float
    timeout_s: float
    max_attempts: int
    attempts: int = 0
    started_at_s: float | None = None
    finished_at_s: float | None = None
    lease_owner: str | None = None
    lease_token: int = 0
    lease_deadline_s: float | None = None
    cancel_requested: bool = False
    progress: JobProgress = field(default_factory=JobProgress)
    error: JobError | None = None
    #: output name -> object key, set when the job succeeds
    outputs: dict[str, str] = field(default_factory=dict)
    webhook_url: str | None = None
    #: never part of job_record; signs this job's webhook events
    webhook_secret: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    #: the async endpoint the job was invoked through (SageMaker-style), if any
    endpoint: str | None = None
    #: where the job's primary output is delivered on success (written once, never replaced), and where an
    #: error document goes on failure; None: only the job's own outputs/ and failures/ keys
    output_uri: str | None = None
    failure_uri: str | None = None
    #: where the events of a job that did not succeed go, when not to webhook_url (an endpoint's error hook)
    error_webhook_url: str | None = None
    #: who owns the job (framequeue.tenants.auth); another tenant's job is answered as a missing one
    tenant: str = "default"
    #: seconds after finished_at_s when the sweeper deletes the job's files (framequeue.retention); None: kept
    retention_s: float | None = None
    #: the lane it waits in (Priority); kept through requeues and retries
    priority: Priority = Priority.NORMAL
    #: epoch second the sweeper deleted the job's files (its outputs map is emptied then)
    outputs_expired_at_s: float | None = None
    #: every claim of the job, oldest first (written with the transition that starts or ends it)
    attempt_history: tuple[Attempt, ...] = ()
    #: what the pipeline found ({type, start_s, end_s, ...}), committed with the outputs; at most MAX_EVENTS
    events: list[dict[str, Any]] = field(default_factory=list)
    #: the pipeline found more than MAX_EVENTS events; the first ones are kept
    events_truncated: bool = False
    #: what the successful run amounted to (video seconds, event and detection counts); empty until then
    totals: RunTotals = field(default_factory=RunTotals)
    #: a segment job's parent, and its position (0-based) among the parent's segments; None for any other job
    parent_id: str | None = None
    segment_index: int | None = None
    #: a parent's count of segment jobs (None until it was split) and of those that succeeded
    segments_total: int | None = None
    segments_done: int = 0

    @property
    def ttl_s(self) -> float:
        return self.expires_at_s - self.created_at_s

    @property
    def is_segment(self) -> bool:
        return self.parent_id is not None

    @property
    def parked(self) -> bool:
        """A split parent waiting for its segments: running to users, no lease, not reapable."""
        return (
            self.status is JobStatus.RUNNING and self.segments_total is not None and self.lease_deadline_s is None
        )


def job_from_columns(row: Mapping[str, Any]) -> Job:
    """A Job from a job-table row whose columns are already Python values (JSON columns decoded); the
    SQL job stores share this mapping and differ only in how their driver returns those columns."""
    error = None if row["error_code"] is None else JobError(row["error_code"], row["error_message"] or "")
    return Job(
        id=row["id"],
        pipeline=row["pipeline"],
        pipeline_version=row["pipeline_version"],
        input_key=row["input_key"],
        params=row["params"],
        status=JobStatus(row["status"]),
        created_at_s=row["created_at_s"],
        updated_at_s=row["updated_at_s"],
        expires_at_s=row["expires_at_s"],
        timeout_s=row["timeout_s"],
        max_attempts=row["max_attempts"],
        attempts=row["attempts"],
        started_at_s=row["started_at_s"],
        finished_at_s=row["finished_at_s"],
        lease_owner=row["lease_owner"],
        lease_token=row["lease_token"],
        lease_deadline_s=row["lease_deadline_s"],
        cancel_requested=bool(row["cancel_requested"]),
        progress=JobProgress(row["frames_done"], row["frames_total"], row["fps"], row["eta_s"]),
        error=error,
        outputs=row["outputs"],
        webhook_url=row["webhook_url"],
        webhook_secret=row["webhook_secret"],
        attributes=row["attributes"],
        idempotency_key=row["idempotency_key"],
        tenant=row["tenant"],
        endpoint=row["endpoint"],
        output_uri=row["output_uri"],
        failure_uri=row["failure_uri"],
        error_webhook_url=row["error_webhook_url"],
        retention_s=row["retention_s"],
        priority=Priority(row["priority"]),
        outputs_expired_at_s=row["outputs_expired_at_s"],
        attempt_history=tuple(Attempt.from_json(a) for a in row["attempt_history"]),
        events=row["events"],
        events_truncated=bool(row["events_truncated"]),
        totals=RunTotals(row["video_s"], row["events_total"], row["detections_total"]),
        parent_id=row["parent_id"],
        segment_index=row["segment_index"],
        segments_total=row["segments_total"],
        segments_done=row["segments_done"],
    )


def output_prefix(job_id: str) -> str:
    return f"outputs/{job_id}/"


def segments_prefix(job_id: str) -> str:
    """Where a split job's segment inputs live (framequeue.worker.split); deleted once it ends."""
    return f"segments/{job_id}/"


def failure_key(job_id: str) -> str:
    return f"failures/{job_id}/error.json"


def attempt_output_key(job_id: str, token: int, name: str) -> str:
    """Outputs of one attempt live under its fencing token, so a stale attempt cannot overwrite them."""
    return f"{output_prefix(job_id)}attempt-{token}/{name}"


def iso(ts_s: float | None) -> str | None:
    if ts_s is None:
        return None
    return dt.datetime.fromtimestamp(ts_s, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_record(job: Job, *, output_location: str, failure_location: str) -> dict[str, Any]:
    """The job as clients see it (API, CLI, webhook payloads). Secrets never appear here. A split parent's
    record gets its `segments` and summed progress from framequeue.jobs.split_view (the service adds them)."""
    return {
        "id": job.id,
        "pipeline": job.pipeline,
        "pipeline_version": job.pipeline_version,
        "endpoint": job.endpoint,
        "status": job.status.value,
        "input": {"key": job.input_key},
        "params": job.params,
        "progress": job.progress.to_dict(),
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "created_at": iso(job.created_at_s),
        "started_at": iso(job.started_at_s),
        "finished_at": iso(job.finished_at_s),
        "expires_at": iso(job.expires_at_s),
        "retention_s": job.retention_s,
        "priority": job.priority.value,
        "outputs_expired_at": iso(job.outputs_expired_at_s),
        "timeout_s": job.timeout_s,
        "cancel_requested": job.cancel_requested,
        "error": None if job.error is None else {"code": job.error.code, "message": job.error.message},
        "output_location": job.output_uri or output_location,
        "failure_location": job.failure_uri or failure_location,
        "outputs": dict(job.outputs),
        "webhook": None if job.webhook_url is None else {"url": job.webhook_url},
        "error_webhook": None if job.error_webhook_url is None else {"url": job.error_webhook_url},
        "attributes": dict(job.attributes),
        "attempt_history": [a.to_record() for a in job.attempt_history],
        "events": list(job.events),
        "events_truncated": job.events_truncated,
        "video_s": job.totals.video_s,
        "events_total": job.totals.events_total,
        "detections_total": job.totals.detections_total,
        "parent_id": job.parent_id,
        "segment_index": job.segment_index,
        "segments_total": job.segments_total,
        "segments_done": job.segments_done,
        "segments": None,
    }


# -- decisions the job stores share (pure: each store only carries them out in its own transaction) ------

CANCELLED_BY_REQUEST = JobError(JobCancelled.code, "cancelled by request")
DEAD_LETTERED = JobError(
    AttemptsExhausted.code, "the queue gave up on the job after its delivery limit (dead-lettered)"
)


def expired_error(job: Job) -> JobError:
    return JobError(JobExpired.code, f"no worker started the job within its queue TTL of {job.ttl_s:.0f} s")


def exhausted_error(job: Job) -> JobError:
    return JobError(
        AttemptsExhausted.code,
        f"the job did not finish in {job.max_attempts} attempts (its worker died or lost its lease each time)",
    )


@dataclass(frozen=True)
class Verdict:
    """What a store does with a job it looked at: claim it, put it back in the queue, end it with
    `status` and `error`, or leave it as it is."""

    action: Literal["claim", "requeue", "end", "leave"]
    status: JobStatus | None = None
    error: JobError | None = None


def claim_verdict(job: Job, now_s: float) -> Verdict:
    """May a worker claim this job now? A queued job past its TTL ends expired; a running one is claimable
    only once its lease ran out; a job out of attempts ends failed instead of running again."""
    if job.status is JobStatus.QUEUED and now_s >= job.expires_at_s:
        return Verdict("end", JobStatus.EXPIRED, expired_error(job))
    lease_free = job.status is JobStatus.QUEUED or (
        job.status is JobStatus.RUNNING and job.lease_deadline_s is not None and now_s >= job.lease_deadline_s
    )
    if not lease_free or job.cancel_requested:
        return Verdict("leave")
    if job.attempts >= job.max_attempts:
        return Verdict("end", JobStatus.FAILED, exhausted_error(job))
    return Verdict("claim")


def lease_expired_verdict(job: Job) -> Verdict:
    """A running job whose lease ran out (its worker died or stalled): the reaper's decision."""
    if job.cancel_requested:
        return Verdict("end", JobStatus.CANCELLED, CANCELLED_BY_REQUEST)
    if job.attempts >= job.max_attempts:
        return Verdict("end", JobStatus.FAILED, exhausted_error(job))
    return Verdict("requeue")


# -- retention (pure: framequeue.retention sweeps, the stores select with the same rule) ---------------


def outputs_due(job: Job, now_s: float, finished_before_s: float | None = None) -> bool:
    """Are the job's files due for deletion now? Only an ended job not yet swept: once finished_at_s +
    retention_s has come (the boundary itself is due; no retention_s: never by this clause), or, when an
    operator names `finished_before_s` (framequeue purge --before), if it finished before that."""
    if not job.status.terminal or job.finished_at_s is None or job.outputs_expired_at_s is not None:
        return False
    if job.retention_s is not None and job.finished_at_s + job.retention_s <= now_s:
        return True
    return finished_before_s is not None and job.finished_at_s < finished_before_s


def record_due(job: Job, now_s: float, record_retention_s: float) -> bool:
    """Is the job's record due for purging? An ended job record_retention_s after it finished; 0: never."""
    return (
        record_retention_s > 0
        and job.status.terminal
        and job.finished_at_s is not None
        and job.finished_at_s + record_retention_s <= now_s
    )


# -- attempt history and events (pure: each store writes them in the transition's own transaction) ------

#: the most events a job record keeps
MAX_EVENTS = 1000


def bounded_events(events: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """The events a job keeps (the first MAX_EVENTS), and whether some were dropped."""
    return [dict(e) for e in events[:MAX_EVENTS]], len(events) > MAX_EVENTS


def attempt_begun(job: Job, worker: str, now_s: float) -> tuple[Attempt, ...]:
    """The history once `worker` claimed the job at now_s; an attempt still open lost its lease."""
    history = attempt_ended(job.attempt_history, Outcome.LEASE_LOST, now_s)
    return (*history, Attempt(len(history) + 1, worker, now_s))


def attempt_ended(
    history: tuple[Attempt, ...], outcome: Outcome, now_s: float, error: JobError | None = None
) -> tuple[Attempt, ...]:
    """The history with its open attempt (if any) ended."""
    if not history or history[-1].ended_at_s is not None:
        return history
    return (*history[:-1], replace(history[-1], ended_at_s=now_s, outcome=outcome, error=error))


def history_at_end(
    job: Job, status: JobStatus, now_s: float, error: JobError | None, outcome: Outcome | None = None
) -> tuple[Attempt, ...]:
    """The history once `job` moved to the terminal `status`: a running job's attempt ends with `outcome`, by
    default the one `status` and `error` say (end_outcome), and only then carries the job's error."""
    if job.status is not JobStatus.RUNNING:
        return job.attempt_history
    attempt_error = error if outcome is None else None
    return attempt_ended(job.attempt_history, outcome or end_outcome(status, error), now_s, attempt_error)


def end_outcome(status: JobStatus, error: JobError | None) -> Outcome:
    """How the running attempt ended when its worker moved the job to `status`."""
    if status is JobStatus.SUCCEEDED:
        return Outcome.SUCCEEDED
    if status is JobStatus.CANCELLED:
        return Outcome.CANCELLED
    return Outcome.TIMEOUT if error is not None and error.code == JobTimeout.code else Outcome.FAILED


@dataclass(frozen=True)
class LaneBacklog:
    """One lane's and one tenant's jobs still to finish (JobStateStore.lane_backlog): what per-lane metrics and
    scaling read."""

    priority: Priority
    tenant: str
    queued: int
    running: int
    #: created_at_s of the group's oldest queued job (None when none is queued)
    oldest_queued_at_s: float | None = None


# -- split jobs (pure: framequeue.jobstore.*.segments carry these out in the transition's own transaction) --

#: a parent cancelled or failed: its segments not yet ended stop with this
CANCELLED_WITH_PARENT = JobError(JobCancelled.code, "cancelled with its parent job")


def segment_job(
    parent: Job, index: int, job_id: str, input_key: str, segment: Mapping[str, Any], now_s: float
) -> Job:
    """The queued segment job `index` of `parent`: its pipeline and params plus a `segment` block (the
    segment's place in the whole video), its tenant, lane, timeout and attempts; no webhook, no delivery
    location; the parent's queue TTL counted from now."""
    return Job(
        id=job_id, pipeline=parent.pipeline, pipeline_version=parent.pipeline_version, input_key=input_key,
        params={**parent.params, "segment": dict(segment)}, status=JobStatus.QUEUED, created_at_s=now_s,
        updated_at_s=now_s, expires_at_s=now_s + parent.ttl_s, timeout_s=parent.timeout_s,
        max_attempts=parent.max_attempts, tenant=parent.tenant, retention_s=parent.retention_s,
        priority=parent.priority, parent_id=parent.id, segment_index=index,
    )


def segment_failed_error(segment: Job) -> JobError:
    """The parent's error when `segment` ended without success."""
    why = "no error" if segment.error is None else f"{segment.error.code}: {segment.error.message}"
    return JobError(
        SegmentFailed.code,
        f"segment {segment.segment_index} ({segment.id}) ended {segment.status.value}: {why}",
    )


def stitch_due(parent: Job, segments_done: int) -> bool:
    """Whether a parked parent with `segments_done` successful segments is ready for its stitch (the last one
    committed): the one rule both stores' cascades apply."""
    return parent.parked and parent.segments_total is not None and segments_done >= parent.segments_total


def stitch_expiry_s(parent: Job, now_s: float) -> float:
    """A parent queued again for its stitch waits at most its queue TTL from now (never less than before)."""
    return max(parent.expires_at_s, now_s + parent.ttl_s)


def split_view(parent: Job, segments: Sequence[Job]) -> dict[str, Any]:
    """What a split parent's record adds: progress summed over its segments (frames done of the total) and
    each segment's state. A parent not (yet) split, or stitching with no segments read, adds nothing."""
    if parent.segments_total is None or not segments:
        return {}
    totals = [s.progress.frames_total for s in segments]
    done = sum(
        (s.progress.frames_total or s.progress.frames_done) if s.status is JobStatus.SUCCEEDED
        else s.progress.frames_done for s in segments
    )
    total = None if any(t is None for t in totals) else sum(t or 0 for t in totals)
    fps = sum(s.progress.fps for s in segments if s.status is JobStatus.RUNNING)
    progress = parent.progress
    if not parent.status.terminal:  # parked, queued for its stitch, or stitching: the segments' sum
        progress = JobProgress(done, total, fps, None if total is None or fps <= 0 else max(0, total - done) / fps)
    return {
        "progress": progress.to_dict(),
        "segments": [
            {
                "id": s.id, "index": s.segment_index, "status": s.status.value, "attempts": s.attempts,
                "frames_done": s.progress.frames_done, "frames_total": s.progress.frames_total,
                "error": None if s.error is None else {"code": s.error.code, "message": s.error.message},
            }
            for s in segments
        ],
    }
