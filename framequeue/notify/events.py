"""Which outbox rows a job's transition writes, their ids and their payload: the one home of the rule
that every job store carries out in the transaction of the transition (pure: no I/O).

A terminal state supersedes the job's progress events not yet sent, and writes its webhook event (to the
error hook when the job did not succeed and has one) and, for a job that did not succeed and names a
failure location, the failure document. A progress report asked to notify writes a numbered
`job.progress` event. Ids are stable, so a row is written once however often its transition is retried.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from framequeue.jobs import Job, JobStatus, iso, job_record

#: renders a job's webhook payload (the job record as JSON bytes) when one of its events is written
PayloadRenderer = Callable[[Job], bytes]


@dataclass(frozen=True)
class OutboxRow:
    """One row a transition writes to the outbox (written once: a row with this id already there stays)."""

    #: the webhook-id (or the document's id), stable across retries
    id: str
    url: str
    #: signs a webhook event; empty for a document
    secret: str
    payload: bytes
    #: a webhook event is written dead at once when its URL is disabled for the job's tenant (a 410
    #: earlier); a document goes to an object location, which nothing disables
    webhook: bool


def terminal_event_id(job_id: str, status: JobStatus) -> str:
    """The webhook-id of a job's terminal event, e.g. `evt_<job id>_succeeded`."""
    return f"evt_{job_id}_{status.value}"


def progress_event_id(job_id: str, n: int) -> str:
    """The webhook-id of a job's n-th `job.progress` event (n from 1)."""
    return f"{progress_event_prefix(job_id)}{n}"


def progress_event_prefix(job_id: str) -> str:
    """What the ids of a job's progress events start with (stores count and supersede them by it)."""
    return f"evt_{job_id}_progress_"


def superseded_error(status: JobStatus) -> str:
    """last_error of a progress event not yet sent when its job ended: it would only arrive stale."""
    return f"superseded by job.{status.value}"


def event_url(job: Job) -> str | None:
    """Where the webhook event of the job's terminal state goes: its error hook for an unsuccessful end
    when it has one, else its webhook."""
    if job.status is not JobStatus.SUCCEEDED and job.error_webhook_url:
        return job.error_webhook_url
    return job.webhook_url


def terminal_rows(ended: Job, render: PayloadRenderer) -> list[OutboxRow]:
    """The rows the job's terminal state writes, besides superseding its unsent progress events."""
    rows = []
    url = event_url(ended)
    if url and ended.webhook_secret:
        event_id = terminal_event_id(ended.id, ended.status)
        rows.append(OutboxRow(event_id, url, ended.webhook_secret, render(ended), True))
    if ended.failure_uri and ended.status is not JobStatus.SUCCEEDED:
        rows.append(OutboxRow(f"doc_{ended.id}_{ended.status.value}", ended.failure_uri, "", render(ended), False))
    return rows


def progress_row(job: Job, n: int, render: PayloadRenderer) -> OutboxRow | None:
    """The n-th progress event of a running job (n from 1), or None when the job has no signed webhook."""
    if not (job.webhook_url and job.webhook_secret):
        return None
    return OutboxRow(progress_event_id(job.id, n), job.webhook_url, job.webhook_secret, render(job), True)


def render_event(job: Job, *, output_location: str, failure_location: str, now_s: float) -> bytes:
    """The webhook payload of a job's event, fixed when the event is written: `job.<terminal state>`, or
    `job.progress` while it runs (receivers drop one older than what they have: `data.progress` and
    `timestamp` say how far and when)."""
    record = job_record(job, output_location=output_location, failure_location=failure_location)
    kind = "progress" if job.status is JobStatus.RUNNING else job.status.value
    event: dict[str, Any] = {"type": f"job.{kind}", "timestamp": iso(now_s), "data": record}
    return json.dumps(event, separators=(",", ":")).encode()
