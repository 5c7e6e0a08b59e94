"""A worker's writes in a SQL job store, each fenced by the lease token its claim handed out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from framequeue.jobs import (
    Job,
    JobError,
    JobProgress,
    JobStatus,
    Outcome,
    RunTotals,
    attempt_begun,
    attempt_ended,
    check_transition,
    claim_verdict,
)
from framequeue.jobstore.sql import transitions
from framequeue.jobstore.sql.base import SqlBase
from framequeue.jobstore.sql.dialect import Row, Tx
from framequeue.notify.events import PayloadRenderer, progress_row
from framequeue.tenants.fairshare import CLOCK_KEY, next_turn, turn_of

_PROGRESS = """UPDATE {s}.jobs SET frames_done = %s, frames_total = %s, fps = %s, eta_s = %s, updated_at_s = %s
   WHERE id = %s AND lease_token = %s AND status = 'running' RETURNING cancel_requested"""
#: the same, returning the whole row: an event's payload renders the job
_PROGRESS_EVENT = _PROGRESS.replace("RETURNING cancel_requested", "RETURNING *")

#: transitions.locked, saying too whether another tenant has jobs waiting in the job's lane: two probes of the
#: jobs_waiting index, either side of the job's tenant (so a long backlog of its own is never walked)
_LOCKED_FAIR = """SELECT j.*, ((SELECT MAX(o.tenant) FROM {s}.jobs o WHERE o.status = 'queued'
        AND o.published_at_s IS NOT NULL AND o.priority = j.priority AND o.tenant < j.tenant) IS NOT NULL
    OR (SELECT MIN(o.tenant) FROM {s}.jobs o WHERE o.status = 'queued'
        AND o.published_at_s IS NOT NULL AND o.priority = j.priority AND o.tenant > j.tenant) IS NOT NULL
    ) AS contended FROM {s}.jobs j WHERE j.id = %s{for_update}"""
#: the tenants with jobs waiting in a lane (queued, message published), each with its fair-share tag, and
#: the lane's clock: a skip scan of the jobs_waiting index, one probe per tenant whatever the backlog
_WAITING = """
WITH RECURSIVE waiting(tenant) AS (
    SELECT MIN(tenant) FROM {s}.jobs WHERE status = 'queued' AND published_at_s IS NOT NULL AND priority = %s
    UNION ALL
    SELECT (SELECT MIN(j.tenant) FROM {s}.jobs j WHERE j.status = 'queued' AND j.published_at_s IS NOT NULL
            AND j.priority = %s AND j.tenant > waiting.tenant)
    FROM waiting WHERE waiting.tenant IS NOT NULL
)
SELECT w.tenant AS tenant, f.vtime AS vtime FROM waiting w
    LEFT JOIN {s}.fair_share f ON f.priority = %s AND f.tenant = w.tenant
    WHERE w.tenant IS NOT NULL
UNION ALL
SELECT tenant, vtime FROM {s}.fair_share WHERE priority = %s AND tenant = %s"""
#: a tenant's oldest waiting job of a lane (the same index, in order)
_OLDEST = """SELECT * FROM {s}.jobs WHERE status = 'queued' AND published_at_s IS NOT NULL AND priority = %s
   AND tenant = %s ORDER BY created_at_s, seq LIMIT 1{skip_locked}"""
#: the lane's clock moves to the turn's start, the tenant's tag to its finish; a racing claim's charge adds up
#: (the tag grows by its step from whichever is later, the stored tag or this start)
_CHARGE = """INSERT INTO {s}.fair_share AS f (priority, tenant, vtime) VALUES (%s, %s, %s), (%s, %s, %s)
   ON CONFLICT (priority, tenant) DO UPDATE
   SET vtime = {greatest}(f.vtime + CASE WHEN excluded.tenant = %s THEN 0 ELSE %s END, excluded.vtime)"""


class SqlLeases(SqlBase):
    def claim(self, job_id: str, owner: str, lease_s: float, now_s: float) -> Job | None:
        def work(tx: Tx) -> Job | None:
            job = _claimable(tx, self._render, job_id, now_s)
            return None if job is None else _take(tx, job, owner, lease_s, now_s)

        return self._engine.write(work)

    def claim_fair(
        self, job_id: str, owner: str, lease_s: float, now_s: float, weights: Mapping[str, float]
    ) -> Job | None:
        def work(tx: Tx) -> Job | None:
            row = tx.one(_LOCKED_FAIR, (job_id,))
            if row is None:
                return None
            contended = bool(row.pop("contended"))
            job = _judged(tx, self._render, row, now_s)
            if job is None or not contended:  # one tenant waiting in the lane: nothing to share, nothing to charge
                return None if job is None else _take(tx, job, owner, lease_s, now_s)
            lane = job.priority.value
            rows = tx.all(_WAITING, (lane, lane, lane, lane, CLOCK_KEY))
            clock = next((float(r["vtime"]) for r in rows if r["tenant"] == CLOCK_KEY), 0.0)
            tags = {r["tenant"]: r["vtime"] for r in rows if r["tenant"] != CLOCK_KEY}
            tags.setdefault(job.tenant, None)  # its message may have come before mark_published
            turn = next_turn(tags, clock, weights, job.tenant)
            chosen = job
            if turn.tenant != job.tenant:
                other = _oldest(tx, self._render, lane, turn.tenant, now_s)
                if other is None:  # taken meanwhile (PostgreSQL skips locked rows): the job in hand runs
                    turn = turn_of(job.tenant, tags, clock, weights, charge=True)
                else:
                    chosen = other
            if turn.charge:
                tx.run(_CHARGE, (lane, CLOCK_KEY, turn.start, lane, turn.tenant, turn.finish,
                                 CLOCK_KEY, turn.finish - turn.start))
            return _take(tx, chosen, owner, lease_s, now_s)

        return self._engine.write(work)

    def renew(self, job_id: str, token: int, lease_s: float, now_s: float) -> bool:
        def work(tx: Tx) -> bool:
            row = tx.one(
                """UPDATE {s}.jobs SET lease_deadline_s = {greatest}(lease_deadline_s, %s), updated_at_s = %s
                   WHERE id = %s AND lease_token = %s AND status = 'running' RETURNING cancel_requested""",
                (now_s + lease_s, now_s, job_id, token),
            )
            if row is None:
                raise transitions.lease_lost(tx, job_id, token)
            return bool(row["cancel_requested"])

        return self._engine.write(work)

    def report_progress(
        self, job_id: str, token: int, progress: JobProgress, now_s: float, *, event: bool = False
    ) -> bool:
        def work(tx: Tx) -> bool:
            row = tx.one(
                _PROGRESS_EVENT if event else _PROGRESS,
                (progress.frames_done, progress.frames_total, progress.fps, progress.eta_s, now_s, job_id, token),
            )
            if row is None:
                raise transitions.lease_lost(tx, job_id, token)
            if event and row["webhook_url"] and row["webhook_secret"]:
                job = transitions.job(tx, row)
                # the UPDATE holds the row's write lock until commit: the count below is this job's alone
                count = tx.one(
                    "SELECT COUNT(*) AS n FROM {s}.outbox WHERE job_id = %s AND id LIKE %s",
                    (job_id, transitions.progress_like(job_id)),
                )
                assert count is not None
                notice = progress_row(job, int(count["n"]) + 1, self._render)
                if notice is not None:
                    transitions.write_row(tx, job, notice, now_s)
            return bool(row["cancel_requested"])

        return self._engine.write(work)

    def finish(
        self,
        job_id: str,
        token: int,
        status: JobStatus,
        now_s: float,
        *,
        error: JobError | None = None,
        outputs: dict[str, str] | None = None,
        progress: JobProgress | None = None,
        events: Sequence[Mapping[str, Any]] | None = None,
        totals: RunTotals | None = None,
        then: Callable[[Any], None] | None = None,
    ) -> Job:
        def work(tx: Tx) -> Job:
            job = transitions.fenced(tx, job_id, token)
            if progress is not None:
                tx.run(
                    "UPDATE {s}.jobs SET frames_done = %s, frames_total = %s, fps = %s WHERE id = %s",
                    (progress.frames_done, progress.frames_total, progress.fps, job_id),
                )
            if totals is not None:
                tx.run(
                    "UPDATE {s}.jobs SET video_s = %s, events_total = %s, detections_total = %s WHERE id = %s",
                    (totals.video_s, totals.events_total, totals.detections_total, job_id),
                )
            ended = transitions.end(tx, self._render, job, status, now_s, error, outputs, events=events)
            if then is not None:  # TxJobStore: e.g. the ack of the job's message, committed with its end
                then(tx.connection)
            return ended

        return self._engine.write(work)

    def release(
        self, job_id: str, token: int, now_s: float, *, count_attempt: bool, error: JobError | None = None
    ) -> Job:
        def work(tx: Tx) -> Job:
            job = transitions.fenced(tx, job_id, token)
            check_transition(job.status, JobStatus.QUEUED)
            outcome = Outcome.FAILED if count_attempt else Outcome.HANDED_BACK
            history = attempt_ended(job.attempt_history, outcome, now_s, error)
            row = tx.one(
                """UPDATE {s}.jobs SET status = 'queued', lease_owner = NULL, lease_deadline_s = NULL,
                   published_at_s = NULL, attempts = attempts - %s, updated_at_s = %s, attempt_history = %s
                   WHERE id = %s RETURNING *""",
                (0 if count_attempt else 1, now_s, transitions.history_json(tx, history), job_id),
            )
            assert row is not None
            return transitions.job(tx, row)

        return self._engine.write(work)


def _claimable(tx: Tx, render: PayloadRenderer, job_id: str, now_s: float) -> Job | None:
    """The job, locked, when claim_verdict lets a worker take it now; a job past its TTL or out of
    attempts is ended on the way (its attempt, if one was open, ends lease_lost)."""
    row = transitions.locked(tx, job_id)
    return None if row is None else _judged(tx, render, row, now_s)


def _judged(tx: Tx, render: PayloadRenderer, row: Row, now_s: float) -> Job | None:
    job = transitions.job(tx, row)
    verdict = claim_verdict(job, now_s)
    if verdict.action == "end":
        assert verdict.status is not None
        transitions.end(tx, render, job, verdict.status, now_s, verdict.error, outcome=Outcome.LEASE_LOST)
    return job if verdict.action == "claim" else None


def _take(tx: Tx, job: Job, owner: str, lease_s: float, now_s: float) -> Job:
    """Claim a job found claimable in this transaction: running, attempts + 1, a new fencing token."""
    claimed = tx.one(
        """UPDATE {s}.jobs SET status = 'running', attempts = attempts + 1,
           lease_token = lease_token + 1, lease_owner = %s, lease_deadline_s = %s,
           started_at_s = COALESCE(started_at_s, %s), updated_at_s = %s, frames_done = 0, fps = 0,
           eta_s = NULL, attempt_history = %s WHERE id = %s RETURNING *""",
        (owner, now_s + lease_s, now_s, now_s,
         transitions.history_json(tx, attempt_begun(job, owner, now_s)), job.id),
    )
    assert claimed is not None  # the row is locked by this transaction
    return transitions.job(tx, claimed)


def _oldest(tx: Tx, render: PayloadRenderer, lane: str, tenant: str, now_s: float) -> Job | None:
    """The tenant's oldest waiting job of the lane, locked, if a worker may take it now (None: another
    transaction holds it, or it was just ended past its TTL)."""
    row = tx.one(_OLDEST, (lane, tenant))
    return None if row is None else _judged(tx, render, row, now_s)
