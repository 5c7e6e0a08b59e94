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
from framequeue.jobstore.sql.dialect import Tx
from framequeue.notify.events import progress_row

_PROGRESS = """UPDATE {s}.jobs SET frames_done = %s, frames_total = %s, fps = %s, eta_s = %s, updated_at_s = %s
   WHERE id = %s AND lease_token = %s AND status = 'running' RETURNING cancel_requested"""
#: the same, returning the whole row: an event's payload renders the job
_PROGRESS_EVENT = _PROGRESS.replace("RETURNING cancel_requested", "RETURNING *")


class SqlLeases(SqlBase):
    def claim(self, job_id: str, owner: str, lease_s: float, now_s: float) -> Job | None:
        def work(tx: Tx) -> Job | None:
            row = transitions.locked(tx, job_id)
            if row is None:
                return None
            job = transitions.job(tx, row)
            verdict = claim_verdict(job, now_s)
            if verdict.action == "end":
                assert verdict.status is not None
                transitions.end(
                    tx, self._render, job, verdict.status, now_s, verdict.error, outcome=Outcome.LEASE_LOST
                )
            if verdict.action != "claim":
                return None
            claimed = tx.one(
                """UPDATE {s}.jobs SET status = 'running', attempts = attempts + 1,
                   lease_token = lease_token + 1, lease_owner = %s, lease_deadline_s = %s,
                   started_at_s = COALESCE(started_at_s, %s), updated_at_s = %s, frames_done = 0, fps = 0,
                   eta_s = NULL, attempt_history = %s WHERE id = %s RETURNING *""",
                (owner, now_s + lease_s, now_s, now_s,
                 transitions.history_json(tx, attempt_begun(job, owner, now_s)), job_id),
            )
            assert claimed is not None  # the row is locked by this transaction
            return transitions.job(tx, claimed)

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
