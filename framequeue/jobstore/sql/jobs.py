"""Jobs in a SQL job store: submit (idempotent by key and request hash), read, cancel, the reaper's pass,
and which jobs the broker holds a message for. The worker's fenced writes are in leases.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from framequeue.errors import IdempotencyConflict, JobNotFound
from framequeue.jobs import (
    CANCELLED_BY_REQUEST,
    DEAD_LETTERED,
    Job,
    JobStatus,
    LaneBacklog,
    Outcome,
    Priority,
    attempt_ended,
    expired_error,
    lease_expired_verdict,
)
from framequeue.jobstore.sql import transitions
from framequeue.jobstore.sql.base import SqlBase
from framequeue.jobstore.sql.dialect import Tx


class SqlJobs(SqlBase):
    def create(self, job: Job, request_hash: str | None = None) -> tuple[Job, bool]:
        def work(tx: Tx) -> tuple[Job, bool]:
            made = _insert(tx, job, request_hash)
            if isinstance(made, IdempotencyConflict):
                raise made
            return made

        return self._engine.write(work)

    def create_many(
        self, jobs: Sequence[tuple[Job, str | None]], *, enqueue: Callable[[Any, list[Job]], None] | None = None
    ) -> list[tuple[Job, bool] | IdempotencyConflict]:
        # one transaction, one statement per row: each row's ON CONFLICT sees the rows inserted before it, so a
        # key repeated within the batch answers its first job. With `enqueue` (TxJobStore), the new rows are
        # born published and their messages join the same commit
        def work(tx: Tx) -> list[tuple[Job, bool] | IdempotencyConflict]:
            made = [_insert(tx, job, request_hash, published=enqueue is not None) for job, request_hash in jobs]
            created = [m[0] for m in made if not isinstance(m, IdempotencyConflict) and m[1]]
            if enqueue is not None and created:
                enqueue(tx.connection, created)
            return made

        return self._engine.write(work)

    def get(self, job_id: str) -> Job:
        return self._engine.read(lambda tx: transitions.get(tx, job_id))

    def list_jobs(
        self, status: JobStatus | None = None, limit: int = 50, after: str | None = None, tenant: str | None = None
    ) -> list[Job]:
        clauses, args = ["parent_id IS NULL"], []  # segment jobs show in their parent's record
        if tenant is not None:
            clauses.append("tenant = %s")
            args.append(tenant)
        if status is not None:
            clauses.append("status = %s")
            args.append(status.value)
        if after is not None:
            clauses.append("seq < (SELECT seq FROM {s}.jobs WHERE id = %s)")
            args.append(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        text = f"SELECT * FROM {{s}}.jobs {where} ORDER BY seq DESC LIMIT %s"
        return self._engine.read(lambda tx: [transitions.job(tx, r) for r in tx.all(text, (*args, limit))])

    def count_queued(self, tenant: str) -> int:
        def work(tx: Tx) -> int:
            row = tx.one(
                "SELECT COUNT(*) AS n FROM {s}.jobs WHERE tenant = %s AND status = 'queued' AND parent_id IS NULL",
                (tenant,),
            )
            assert row is not None
            return int(row["n"])

        return self._engine.read(work)

    def lane_backlog(self) -> list[LaneBacklog]:
        text = """SELECT priority, tenant, SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END) AS queued,
                         SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END) AS running,
                         MIN(CASE WHEN status = 'queued' THEN created_at_s END) AS oldest
                  FROM {s}.jobs WHERE status IN ('queued', 'running') GROUP BY priority, tenant"""
        return self._engine.read(lambda tx: [
            LaneBacklog(Priority(r["priority"]), r["tenant"], int(r["queued"]), int(r["running"]),
                        None if r["oldest"] is None else float(r["oldest"]))
            for r in tx.all(text, ())
        ])

    def cancel(self, job_id: str, now_s: float) -> Job:
        def work(tx: Tx) -> Job:
            row = transitions.locked(tx, job_id)
            if row is None:
                raise JobNotFound(f"no job {job_id}")
            job = transitions.job(tx, row)
            if job.status is JobStatus.QUEUED or job.parked:  # parked: a split parent no worker holds
                return transitions.end(tx, self._render, job, JobStatus.CANCELLED, now_s, CANCELLED_BY_REQUEST)
            if job.status is JobStatus.RUNNING:
                updated = tx.one(
                    "UPDATE {s}.jobs SET cancel_requested = TRUE, updated_at_s = %s WHERE id = %s RETURNING *",
                    (now_s, job_id),
                )
                assert updated is not None
                return transitions.job(tx, updated)
            return job  # already terminal: cancelling is a no-op, the answer says how it ended

        return self._engine.write(work)

    def reap(self, now_s: float) -> list[str]:
        def work(tx: Tx) -> list[str]:
            # SKIP LOCKED (where rows are locked): a job being claimed or finished now is left to the next pass
            for row in tx.all(
                "SELECT * FROM {s}.jobs WHERE status = 'queued' AND expires_at_s <= %s ORDER BY seq{skip_locked}",
                (now_s,),
            ):
                job = transitions.job(tx, row)
                transitions.end(tx, self._render, job, JobStatus.EXPIRED, now_s, expired_error(job))
            requeued: list[str] = []
            for row in tx.all(
                "SELECT * FROM {s}.jobs WHERE status = 'running' AND lease_deadline_s <= %s ORDER BY seq{skip_locked}",
                (now_s,),
            ):
                job = transitions.job(tx, row)
                verdict = lease_expired_verdict(job)
                if verdict.action == "end":
                    assert verdict.status is not None
                    transitions.end(
                        tx, self._render, job, verdict.status, now_s, verdict.error, outcome=Outcome.LEASE_LOST
                    )
                    continue
                history = attempt_ended(job.attempt_history, Outcome.LEASE_LOST, now_s)
                tx.run(
                    """UPDATE {s}.jobs SET status = 'queued', lease_owner = NULL, lease_deadline_s = NULL,
                       published_at_s = NULL, updated_at_s = %s, attempt_history = %s WHERE id = %s""",
                    (now_s, transitions.history_json(tx, history), job.id),
                )
                requeued.append(job.id)
            return requeued

        return self._engine.write(work)

    def discard_unpublished(self, job_id: str) -> bool:
        return self._engine.write(
            lambda tx: tx.run(
                """DELETE FROM {s}.jobs WHERE id = %s AND status = 'queued' AND published_at_s IS NULL
                   AND attempts = 0""",
                (job_id,),
            )
            > 0
        )

    def mark_published(self, job_id: str, now_s: float) -> None:
        self._engine.write(lambda tx: tx.run("UPDATE {s}.jobs SET published_at_s = %s WHERE id = %s", (now_s, job_id)))

    def mark_published_many(self, job_ids: Sequence[str], now_s: float) -> None:
        if job_ids:
            self._engine.write(lambda tx: tx.run("UPDATE {s}.jobs SET published_at_s = %s WHERE id {any}",
                                                 (now_s, tx.dialect.array(list(job_ids)))))

    def unpublished(self, older_than_s: float, limit: int, stale_before_s: float | None = None) -> list[str]:
        rows = self._engine.read(
            lambda tx: tx.all(
                """SELECT id FROM {s}.jobs WHERE status = 'queued'
                   AND ((published_at_s IS NULL AND created_at_s < %s) OR published_at_s < %s)
                   ORDER BY seq LIMIT %s""",
                (older_than_s, -1.0 if stale_before_s is None else stale_before_s, limit),
            )
        )
        return [r["id"] for r in rows]

    def fail_dead_lettered(self, job_id: str, now_s: float) -> bool:
        def work(tx: Tx) -> bool:
            row = transitions.locked(tx, job_id)
            if row is None or row["status"] != JobStatus.QUEUED.value:
                return False
            transitions.end(tx, self._render, transitions.job(tx, row), JobStatus.FAILED, now_s, DEAD_LETTERED)
            return True

        return self._engine.write(work)


def _insert(
    tx: Tx, job: Job, request_hash: str | None, *, published: bool = False
) -> tuple[Job, bool] | IdempotencyConflict:
    """Insert a queued job: (job, True); (existing, False) for its idempotency key's job with the same
    request_hash; an IdempotencyConflict (returned, so a batch's other rows still commit) for another.
    `published`: its message commits in this transaction, so the row is marked published at its creation."""
    encode = tx.dialect.encode_json
    # ON CONFLICT waits for a concurrent insert of the same key to commit: one job per key
    row = tx.one(
        """INSERT INTO {s}.jobs ({seq_column}id, pipeline, pipeline_version, input_key, params, status,
           created_at_s, updated_at_s, expires_at_s, timeout_s, max_attempts, webhook_url,
           webhook_secret, attributes, idempotency_key, request_hash, endpoint, output_uri,
           failure_uri, error_webhook_url, tenant, retention_s, priority, published_at_s)
           VALUES ({seq_value}%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
           %s, %s, %s, %s, %s)
           ON CONFLICT (idempotency_key) DO NOTHING RETURNING *""",
        (
            job.id, job.pipeline, job.pipeline_version, job.input_key, encode(job.params),
            JobStatus.QUEUED.value, job.created_at_s, job.updated_at_s, job.expires_at_s,
            job.timeout_s, job.max_attempts, job.webhook_url, job.webhook_secret,
            encode(job.attributes), job.idempotency_key, request_hash, job.endpoint, job.output_uri,
            job.failure_uri, job.error_webhook_url, job.tenant, job.retention_s, job.priority.value,
            job.created_at_s if published else None,
        ),
    )
    if row is not None:
        return transitions.job(tx, row), True
    existing = tx.one("SELECT * FROM {s}.jobs WHERE idempotency_key = %s", (job.idempotency_key,))
    assert existing is not None  # the conflicting row committed, so this statement sees it
    if existing["request_hash"] != request_hash:
        return IdempotencyConflict(
            "this Idempotency-Key was used with a different request body; use a new key for a new job"
        )
    return transitions.job(tx, existing), False
