"""The writes several in-memory job operations share, each under the caller's lock: a job fenced by its
lease token, ending a job, and writing the outbox rows its transitions make (framequeue.notify.events
decides which)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from framequeue.errors import JobNotFound, LeaseLost
from framequeue.jobs import (
    TERMINAL,
    Job,
    JobError,
    JobStatus,
    Outcome,
    bounded_events,
    check_transition,
    history_at_end,
)
from framequeue.jobstore.memory import cascade
from framequeue.jobstore.memory.state import JobEntry, OutboxEntry, State
from framequeue.notify.events import OutboxRow, PayloadRenderer, progress_event_prefix, superseded_error, terminal_rows
from framequeue.notify.outbox import ENDPOINT_DISABLED


def entry(state: State, job_id: str) -> JobEntry:
    found = state.jobs.get(job_id)
    if found is None:
        raise JobNotFound(f"no job {job_id}")
    return found


def fenced(state: State, job_id: str, token: int) -> JobEntry:
    """The running job's entry if `token` still holds its lease; else JobNotFound or LeaseLost."""
    found = entry(state, job_id)
    job = found.job
    if job.status is not JobStatus.RUNNING or job.lease_token != token:
        raise LeaseLost(
            f"job {job_id}: lease token {token} no longer holds (status {job.status.value}, token {job.lease_token})"
        )
    return found


def end(
    state: State,
    render: PayloadRenderer,
    found: JobEntry,
    status: JobStatus,
    now_s: float,
    error: JobError | None,
    outputs: dict[str, str] | None = None,
    *,
    events: Sequence[Mapping[str, Any]] | None = None,
    outcome: Outcome | None = None,
) -> Job:
    """Move to a terminal state and write its outbox rows, as one step under the lock; a running job's
    attempt ends with `outcome` (by default the one `status` and `error` say), and `events` are the pipeline's."""
    current = found.job
    check_transition(current.status, status)
    assert status in TERMINAL
    history = history_at_end(current, status, now_s, error, outcome)
    kept, truncated = (current.events, current.events_truncated) if events is None else bounded_events(events)
    found.job = ended = replace(
        current, status=status, finished_at_s=now_s, updated_at_s=now_s, lease_owner=None, lease_deadline_s=None,
        error=error, progress=replace(current.progress, eta_s=None),
        outputs=dict(current.outputs if outputs is None else outputs), attempt_history=history, events=kept,
        events_truncated=truncated,
    )
    prefix = progress_event_prefix(current.id)
    for row in state.outbox.values():
        if row.job_id == current.id and row.id.startswith(prefix) and row.delivered_at_s is None and not row.dead:
            row.dead, row.last_error = True, superseded_error(status)
    for outbox_row in terminal_rows(ended, render):
        write_row(state, ended, outbox_row, now_s)
    cascade.after_end(state, render, ended, now_s)  # a split's parent or segments, under this lock
    return ended


def write_row(state: State, of: Job, row: OutboxRow, now_s: float) -> None:
    """Write an outbox row of the job unless one with its id is there; a webhook event is dead at once
    when its URL is disabled for the job's tenant."""
    if row.id in state.outbox:
        return
    disabled = row.webhook and (of.tenant, row.url) in state.disabled
    state.outbox[row.id] = OutboxEntry(
        row.id, of.id, row.url, row.secret, row.payload, next_attempt_at_s=now_s, created_at_s=now_s,
        dead=disabled, last_error=ENDPOINT_DISABLED if disabled else None,
    )
