"""The writes several job operations share, each inside the caller's transaction: reading a job row
locked or fenced by its lease token, ending a job, and writing the outbox rows its transitions make
(framequeue.notify.events decides which)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from framequeue.errors import JobNotFound, LeaseLost
from framequeue.jobs import (
    TERMINAL,
    Attempt,
    Job,
    JobError,
    JobStatus,
    Outcome,
    bounded_events,
    check_transition,
    history_at_end,
    job_from_columns,
)
from framequeue.jobstore.sql import cascade
from framequeue.jobstore.sql.dialect import Row, Tx
from framequeue.notify.events import OutboxRow, PayloadRenderer, progress_event_prefix, superseded_error, terminal_rows
from framequeue.notify.outbox import ENDPOINT_DISABLED

#: the JSON columns of the jobs table
_JSON = ("params", "outputs", "attributes", "attempt_history", "events")


def job(tx: Tx, row: Row) -> Job:
    """The job of a row the caller owns (its JSON columns are decoded in place)."""
    decode = tx.dialect.decode_json
    for name in _JSON:
        row[name] = decode(row[name])
    return job_from_columns(row)


def get(tx: Tx, job_id: str) -> Job:
    row = tx.one("SELECT * FROM {s}.jobs WHERE id = %s", (job_id,))
    if row is None:
        raise JobNotFound(f"no job {job_id}")
    return job(tx, row)


def locked(tx: Tx, job_id: str) -> Row | None:
    """The row, locked until the transaction ends (a racing writer waits, then sees this one's write)."""
    return tx.one("SELECT * FROM {s}.jobs WHERE id = %s{for_update}", (job_id,))


def fenced(tx: Tx, job_id: str, token: int) -> Job:
    """The running job, locked, if `token` still holds its lease; else JobNotFound or LeaseLost."""
    row = locked(tx, job_id)
    if row is None:
        raise JobNotFound(f"no job {job_id}")
    if row["status"] != JobStatus.RUNNING.value or row["lease_token"] != token:
        raise _lost(job_id, token, row)
    return job(tx, row)


def lease_lost(tx: Tx, job_id: str, token: int) -> JobNotFound | LeaseLost:
    """Why a fenced UPDATE matched no row."""
    row = tx.one("SELECT status, lease_token FROM {s}.jobs WHERE id = %s", (job_id,))
    return JobNotFound(f"no job {job_id}") if row is None else _lost(job_id, token, row)


def _lost(job_id: str, token: int, row: Mapping[str, Any]) -> LeaseLost:
    return LeaseLost(
        f"job {job_id}: lease token {token} no longer holds (status {row['status']}, token {row['lease_token']})"
    )


def end(
    tx: Tx,
    render: PayloadRenderer,
    current: Job,
    status: JobStatus,
    now_s: float,
    error: JobError | None,
    outputs: dict[str, str] | None = None,
    *,
    events: Sequence[Mapping[str, Any]] | None = None,
    outcome: Outcome | None = None,
) -> Job:
    """Move to a terminal state and write its outbox rows in the same transaction; a running job's attempt
    ends with `outcome` (by default the one `status` and `error` say), and `events` are the pipeline's."""
    check_transition(current.status, status)
    assert status in TERMINAL
    history = history_at_end(current, status, now_s, error, outcome)
    kept, truncated = (None, None) if events is None else bounded_events(events)
    encode = tx.dialect.encode_json
    row = tx.one(
        """UPDATE {s}.jobs SET status = %s, finished_at_s = %s, updated_at_s = %s, lease_owner = NULL,
           lease_deadline_s = NULL, error_code = %s, error_message = %s, eta_s = NULL,
           outputs = COALESCE(%s, outputs), attempt_history = %s, events = COALESCE(%s, events),
           events_truncated = COALESCE(%s, events_truncated) WHERE id = %s RETURNING *""",
        (
            status.value, now_s, now_s, None if error is None else error.code,
            None if error is None else error.message,
            None if outputs is None else encode(outputs), history_json(tx, history),
            None if kept is None else encode(kept), truncated, current.id,
        ),
    )
    assert row is not None
    ended = job(tx, row)
    tx.run(
        """UPDATE {s}.outbox SET dead = TRUE, last_error = %s WHERE job_id = %s AND id LIKE %s
           AND delivered_at_s IS NULL AND dead = FALSE""",
        (superseded_error(status), current.id, progress_like(current.id)),
    )
    for outbox_row in terminal_rows(ended, render):
        write_row(tx, ended, outbox_row, now_s)
    cascade.after_end(tx, render, ended, now_s)  # a split's parent or segments, in this transaction
    return ended


def history_json(tx: Tx, history: tuple[Attempt, ...]) -> Any:
    """The attempt_history column's value."""
    return tx.dialect.encode_json([a.to_json() for a in history])


def write_row(tx: Tx, of: Job, row: OutboxRow, now_s: float) -> None:
    """Write an outbox row of the job unless one with its id is there; a webhook event is dead at once
    when its URL is disabled for the job's tenant."""
    disabled = row.webhook and tx.one(
        "SELECT 1 FROM {s}.disabled_webhooks WHERE tenant = %s AND url = %s", (of.tenant, row.url)
    ) is not None
    tx.run(
        """INSERT INTO {s}.outbox (id, job_id, url, secret, payload, next_attempt_at_s, created_at_s, dead,
           last_error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING""",
        (row.id, of.id, row.url, row.secret, row.payload, now_s, now_s, disabled,
         ENDPOINT_DISABLED if disabled else None),
    )


def progress_like(job_id: str) -> str:
    """A LIKE pattern matching the ids of the job's progress events."""
    return progress_event_prefix(job_id) + "%"
