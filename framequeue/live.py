"""Live job changes for the event streams (GET /v1/jobs/{id}/events, GET /v1/events) and `Prefer: wait`.

The job store has no change feed, so this module polls it: a job stream reads its one row every POLL_S, a
tenant stream reads the tenant's queued and running jobs and its newest page every TENANT_POLL_S. Any job
store works (nothing broker- or database-specific). Knows nothing of HTTP: the routes only encode.

Event ids. An event's id is `<updated_at ms>.<digest>`: the job row's `updated_at` in epoch milliseconds and
the first 12 hex digits of the SHA-256 of the job record sent (canonical JSON). A job stream sends a record
only when its digest differs from the last one sent (a lease renewal moves `updated_at` but changes nothing
a client sees, so it sends nothing); resuming with `Last-Event-ID` compares digests, so the client gets the
job's current record only if it differs from the one it has (progress is a state, not a log: changes missed
while disconnected arrive as the one current record). A tenant stream resumes by time: every job whose row
changed after the id's milliseconds is sent once, oldest change first.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool

from framequeue.errors import InvalidParams, JobNotFound
from framequeue.jobs import Job, JobStatus
from framequeue.service import JobService
from framequeue.tenants.auth import Principal

#: how often a job stream reads its job's row, seconds
POLL_S = 0.25
#: how often a tenant stream reads the tenant's jobs, seconds
TENANT_POLL_S = 1.0
#: queued and running jobs a tenant stream watches at most, each; and the newest jobs it also reads
TENANT_ACTIVE_LIMIT = 500
TENANT_RECENT_LIMIT = 100

#: the `event:` of a change: the first record of a stream and each change of status; a change within one
#: status (progress); the terminal record, the stream's last event
STATUS, PROGRESS, END = "status", "progress", "end"

_EVENT_ID = re.compile(r"^(\d{1,16})\.([0-9a-f]{12})$")


@dataclass(frozen=True)
class EventId:
    updated_at_ms: int
    digest: str

    def __str__(self) -> str:
        return f"{self.updated_at_ms}.{self.digest}"


@dataclass(frozen=True)
class Change:
    id: EventId
    event: str
    record: dict[str, Any]

    @property
    def terminal(self) -> bool:
        return JobStatus(self.record["status"]).terminal


def digest(record: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:12]


def event_id(job: Job, record: dict[str, Any]) -> EventId:
    return EventId(int(job.updated_at_s * 1000), digest(record))


def parse_event_id(raw: str | None) -> EventId | None:
    """A Last-Event-ID this module issued, or None (absent or not one of ours: the stream starts afresh)."""
    m = _EVENT_ID.match((raw or "").strip())
    return None if m is None else EventId(int(m.group(1)), m.group(2))


def kind_of(record: dict[str, Any], previous_status: str | None) -> str:
    if JobStatus(record["status"]).terminal:
        return END
    return PROGRESS if record["status"] == previous_status else STATUS


def parse_statuses(raw: str | None) -> frozenset[JobStatus] | None:
    """`?status=running,queued` of /v1/events; None (every status) when absent."""
    if raw is None or not raw.strip():
        return None
    try:
        return frozenset(JobStatus(s.strip()) for s in raw.split(",") if s.strip())
    except ValueError:
        choices = ", ".join(s.value for s in JobStatus)
        raise InvalidParams(f"status must be a comma-separated list of {choices}") from None


async def current(service: JobService, job_id: str, caller: Principal) -> Change:
    """The caller's job as a change (JobNotFound for another tenant's: the route's 404)."""
    job = await run_in_threadpool(service.owned, job_id, caller)
    record = service.record(job)
    return Change(event_id(job, record), kind_of(record, None), record)


async def follow_job(
    service: JobService, job_id: str, caller: Principal, last: EventId | None = None, poll_s: float = POLL_S
) -> AsyncIterator[Change]:
    """The job's changes, each record once, until (and including) its terminal record; after `last` (a
    resumed stream), only a record other than the one it names."""
    sent = None if last is None else last.digest
    previous: str | None = None
    while True:
        change = await current(service, job_id, caller)
        if change.id.digest != sent:
            yield Change(change.id, kind_of(change.record, previous), change.record)
            sent = change.id.digest
        if change.terminal:
            return
        previous = change.record["status"]
        await anyio.sleep(poll_s)


async def wait_for_end(service: JobService, job_id: str, caller: Principal, wait_s: float) -> dict[str, Any] | None:
    """The job's terminal record if it ends within wait_s seconds, else None (`Prefer: wait`)."""
    with anyio.move_on_after(wait_s):
        async for change in follow_job(service, job_id, caller):
            if change.terminal:
                return change.record
    return None


def _tenant_jobs(service: JobService, tenant: str, tracked: Iterable[str]) -> list[Job]:
    """The tenant's queued, running and newest jobs, and the tracked ones no longer among them (ended)."""
    store = service.store
    found: dict[str, Job] = {}
    for status, limit in ((JobStatus.QUEUED, TENANT_ACTIVE_LIMIT), (JobStatus.RUNNING, TENANT_ACTIVE_LIMIT),
                          (None, TENANT_RECENT_LIMIT)):
        for job in store.list_jobs(status, limit, None, tenant=tenant):
            found[job.id] = job
    for job_id in tracked:
        if job_id not in found:
            try:
                found[job_id] = store.get(job_id)
            except JobNotFound:
                continue
    return sorted(found.values(), key=lambda j: (j.updated_at_s, j.id))


async def follow_tenant(
    service: JobService, caller: Principal, statuses: frozenset[JobStatus] | None = None,
    last: EventId | None = None, poll_s: float = TENANT_POLL_S,
) -> AsyncIterator[Change]:
    """Changes of the caller's tenant's jobs, forever: none for what stood when the stream began (unless
    resumed: then every job changed after `last`); with `statuses`, a change whose new or previous status is
    one of them (a filtered list view sees a job leave it)."""
    seen: dict[str, tuple[float, str, str]] = {}  # job id -> (updated_at, digest, status) last seen
    first = True
    while True:
        # a tracked job still active is re-read by the queries; only those that may have ended are fetched
        tracked = [jid for jid, (_, _, st) in seen.items() if not JobStatus(st).terminal]
        jobs = await run_in_threadpool(_tenant_jobs, service, caller.tenant, tracked)
        for job in jobs:
            before = seen.get(job.id)
            if before is not None and before[0] == job.updated_at_s:
                continue  # the row did not change: no record to render
            record = service.record(job)
            eid = event_id(job, record)
            seen[job.id] = (job.updated_at_s, eid.digest, job.status.value)
            if first and (last is None or eid.updated_at_ms <= last.updated_at_ms):
                continue
            if before is not None and before[1] == eid.digest:
                continue
            previous = None if before is None else before[2]
            if statuses is not None and job.status not in statuses and (previous is None or
                                                                       JobStatus(previous) not in statuses):
                continue
            yield Change(eid, kind_of(record, previous), record)
        # forget ended jobs once they left the newest page (bounded memory)
        present = {j.id for j in jobs}
        for jid in [jid for jid, (_, _, st) in seen.items() if JobStatus(st).terminal and jid not in present]:
            del seen[jid]
        first = False
        await anyio.sleep(poll_s)
