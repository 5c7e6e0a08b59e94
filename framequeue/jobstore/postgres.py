"""The job store on PostgreSQL. Contract: framequeue.jobstore.base.JobStore; semantics mirror the SQLite store.

`postgresql://user@host:5432/db?schema=NAME`: tables live in schema NAME (default "framequeue"), created
and migrated at open (framequeue.jobstore.pg_schema). Sync psycopg with a small pool; why not the async
client is said there.

Every write is one transaction at READ COMMITTED. A claim or terminal write reads the row with
`SELECT … FOR UPDATE`, so two racing claimers queue on the row lock and the second sees the first's claim;
heartbeats and progress are one `UPDATE … WHERE lease_token = … AND status = 'running'`. A terminal state
and its outbox event commit together. Times are the callers' `now_s` (the protocol passes them), as in the
SQLite store, so the hosts' clocks must agree (NTP); the queue uses the database's clock instead.

A restart of the server (or a failover) is ridden out: a call that could not reach it, or lost its
connection before its transaction committed, is run again on a new connection for up to RECONNECT_S, since
the server rolled back whatever it did; one whose COMMIT was cut off is not (its outcome is unknown). A
worker whose progress report or commit falls into the restart goes on with its job. Opening fails at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from framequeue.endpoints.async_endpoints import Endpoint
from framequeue.endpoints.routing import ModelEndpoint, State
from framequeue.errors import (
    ApiKeyNotFound,
    DeliveryNotFound,
    EndpointExists,
    EndpointNotFound,
    IdempotencyConflict,
    JobNotFound,
    LeaseLost,
    ModelEndpointExists,
    ModelEndpointNotFound,
    ServiceUnavailable,
)
from framequeue.jobs import (
    CANCELLED_BY_REQUEST,
    DEAD_LETTERED,
    TERMINAL,
    Job,
    JobError,
    JobProgress,
    JobStatus,
    check_transition,
    claim_verdict,
    event_url,
    expired_error,
    job_from_columns,
    lease_expired_verdict,
    progress_event_id,
)
from framequeue.jobstore.base import PayloadRenderer
from framequeue.jobstore.pg_schema import Conn, Connections, Statements, migrate, parse_pg_url
from framequeue.notify.outbox import ENDPOINT_DISABLED, Delivery, DisabledWebhook, OutboxEvent
from framequeue.tenants.auth import ApiKey

T = TypeVar("T")
log = logging.getLogger(__name__)

#: how long a call keeps trying to reach a server that went away (a restart, a failover) before it fails
RECONNECT_S = 15.0
#: the first pause between tries, doubled up to MAX_RECONNECT_PAUSE_S
RECONNECT_PAUSE_S = 0.1
MAX_RECONNECT_PAUSE_S = 1.0


class ReconnectingConnections(Connections):
    """Connections whose `run` rides out a server restart, for up to `reconnect_s` (0, failing at once,
    until the backend has opened). A call that failed to reach PostgreSQL, or lost its connection before
    its COMMIT, is run again: the server rolled back everything it did. A call whose COMMIT was cut off
    (outcome unknown) is run again only when `repeatable`, i.e. when running it twice does no harm."""

    def __init__(self, conninfo: str, what: str, *, repeatable: bool = False) -> None:
        super().__init__(conninfo, what)
        self.reconnect_s = 0.0
        self._repeatable = repeatable

    def run(self, work: Callable[[Conn], T], *, repeatable: bool | None = None) -> T:
        repeat_commit = self._repeatable if repeatable is None else repeatable
        give_up: float | None = None
        pause_s = RECONNECT_PAUSE_S
        while True:
            committing = False

            def tracked(conn: Conn) -> T:
                nonlocal committing
                result = work(conn)
                committing = True  # from here on a failure may hide a COMMIT that went through
                return result

            try:
                return super().run(tracked)
            except ServiceUnavailable as exc:
                # only a lost server: not a closed pool, a busy one, or an unknown outcome
                if not isinstance(exc.__cause__, psycopg.OperationalError) or (committing and not repeat_commit):
                    raise
                now = time.monotonic()
                if give_up is None:
                    give_up = now + self.reconnect_s
                    if self.reconnect_s > 0:
                        log.warning("%s; trying again for up to %.0f s", exc, self.reconnect_s)
                if now >= give_up:
                    raise
                time.sleep(min(pause_s, give_up - now))
                pause_s = min(2 * pause_s, MAX_RECONNECT_PAUSE_S)


class PostgresJobStore:
    def __init__(self, url: str, render: PayloadRenderer) -> None:
        opts = parse_pg_url(url)
        self.schema = opts.schema
        self._render = render
        self._sql = Statements(opts.schema)
        self._pool = ReconnectingConnections(opts.conninfo, "the job store")
        try:
            self._pool.run(lambda conn: migrate(conn, opts.schema))
        except psycopg.Error as exc:  # e.g. no right to create the schema
            self._pool.close()
            raise ServiceUnavailable(f"cannot prepare the job store in schema {opts.schema}: {exc}") from exc
        except BaseException:
            self._pool.close()
            raise
        self._pool.reconnect_s = RECONNECT_S

    # -- submit and read -------------------------------------------------------------------------------

    def create(self, job: Job, request_hash: str | None = None) -> tuple[Job, bool]:
        def work(conn: Conn) -> tuple[Job, bool]:
            # ON CONFLICT waits for a concurrent insert of the same key to commit: one job per key
            row = conn.execute(
                self._sql(
                    """INSERT INTO {s}.jobs (id, pipeline, pipeline_version, input_key, params, status,
                       created_at_s, updated_at_s, expires_at_s, timeout_s, max_attempts, webhook_url,
                       webhook_secret, attributes, idempotency_key, request_hash, endpoint, output_uri,
                       failure_uri, error_webhook_url, tenant)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                       ON CONFLICT (idempotency_key) DO NOTHING RETURNING *"""
                ),
                (
                    job.id, job.pipeline, job.pipeline_version, job.input_key, Jsonb(job.params),
                    JobStatus.QUEUED.value, job.created_at_s, job.updated_at_s, job.expires_at_s,
                    job.timeout_s, job.max_attempts, job.webhook_url, job.webhook_secret,
                    Jsonb(job.attributes), job.idempotency_key, request_hash, job.endpoint, job.output_uri,
                    job.failure_uri, job.error_webhook_url, job.tenant,
                ),
            ).fetchone()
            if row is not None:
                return _job(row), True
            existing = conn.execute(
                self._sql("SELECT * FROM {s}.jobs WHERE idempotency_key = %s"), (job.idempotency_key,)
            ).fetchone()
            assert existing is not None  # the conflicting row committed, so this statement sees it
            if existing["request_hash"] != request_hash:
                raise IdempotencyConflict(
                    "this Idempotency-Key was used with a different request body; use a new key for a new job"
                )
            return _job(existing), False

        return self._pool.run(work)

    def get(self, job_id: str) -> Job:
        return self._pool.run(lambda conn: self._get(conn, job_id))

    def list_jobs(
        self, status: JobStatus | None = None, limit: int = 50, after: str | None = None, tenant: str | None = None
    ) -> list[Job]:
        def work(conn: Conn) -> list[Job]:
            rows = conn.execute(
                self._sql(
                    """SELECT * FROM {s}.jobs
                       WHERE (%(status)s::text IS NULL OR status = %(status)s)
                         AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s)
                         AND (%(after)s::text IS NULL OR seq < (SELECT seq FROM {s}.jobs WHERE id = %(after)s))
                       ORDER BY seq DESC LIMIT %(limit)s"""
                ),
                {"status": None if status is None else status.value, "after": after, "limit": limit,
                 "tenant": tenant},
            ).fetchall()
            return [_job(r) for r in rows]

        return self._pool.run(work)

    def count_queued(self, tenant: str) -> int:
        def work(conn: Conn) -> int:
            row = conn.execute(
                self._sql("SELECT COUNT(*) AS n FROM {s}.jobs WHERE tenant = %s AND status = 'queued'"), (tenant,)
            ).fetchone()
            assert row is not None
            return int(row["n"])

        return self._pool.run(work)

    # -- the worker's writes, each fenced by the lease token ---------------------------------------------

    def claim(self, job_id: str, owner: str, lease_s: float, now_s: float) -> Job | None:
        def work(conn: Conn) -> Job | None:
            row = self._locked(conn, job_id)
            if row is None:
                return None
            job = _job(row)
            verdict = claim_verdict(job, now_s)
            if verdict.action == "end":
                assert verdict.status is not None
                self._end(conn, job, verdict.status, now_s, verdict.error)
            if verdict.action != "claim":
                return None
            claimed = conn.execute(
                self._sql(
                    """UPDATE {s}.jobs SET status = 'running', attempts = attempts + 1,
                       lease_token = lease_token + 1, lease_owner = %s, lease_deadline_s = %s,
                       started_at_s = COALESCE(started_at_s, %s), updated_at_s = %s, frames_done = 0, fps = 0,
                       eta_s = NULL WHERE id = %s RETURNING *"""
                ),
                (owner, now_s + lease_s, now_s, now_s, job_id),
            ).fetchone()
            assert claimed is not None  # the row is locked by this transaction
            return _job(claimed)

        return self._pool.run(work)

    def renew(self, job_id: str, token: int, lease_s: float, now_s: float) -> bool:
        def work(conn: Conn) -> bool:
            row = conn.execute(
                self._sql(
                    """UPDATE {s}.jobs SET lease_deadline_s = GREATEST(lease_deadline_s, %s), updated_at_s = %s
                       WHERE id = %s AND lease_token = %s AND status = 'running' RETURNING cancel_requested"""
                ),
                (now_s + lease_s, now_s, job_id, token),
            ).fetchone()
            if row is None:
                raise self._lease_lost(conn, job_id, token)
            return bool(row["cancel_requested"])

        return self._pool.run(work)

    def report_progress(
        self, job_id: str, token: int, progress: JobProgress, now_s: float, *, event: bool = False
    ) -> bool:
        def work(conn: Conn) -> bool:
            row = conn.execute(
                self._sql(
                    """UPDATE {s}.jobs SET frames_done = %s, frames_total = %s, fps = %s, eta_s = %s,
                       updated_at_s = %s
                       WHERE id = %s AND lease_token = %s AND status = 'running' RETURNING *"""
                ),
                (progress.frames_done, progress.frames_total, progress.fps, progress.eta_s, now_s, job_id, token),
            ).fetchone()
            if row is None:
                raise self._lease_lost(conn, job_id, token)
            job = _job(row)
            if event and job.webhook_url and job.webhook_secret:
                # the UPDATE holds the row lock until commit: the count below is this job's alone
                count = conn.execute(
                    self._sql("SELECT COUNT(*) AS n FROM {s}.outbox WHERE job_id = %s AND id LIKE %s"),
                    (job_id, _progress_like(job_id)),
                ).fetchone()
                assert count is not None
                self._write_event(conn, job, progress_event_id(job_id, count["n"] + 1), job.webhook_url, now_s)
            return bool(row["cancel_requested"])

        return self._pool.run(work)

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
    ) -> Job:
        def work(conn: Conn) -> Job:
            job = self._fenced(conn, job_id, token)
            if progress is not None:
                conn.execute(
                    self._sql("UPDATE {s}.jobs SET frames_done = %s, frames_total = %s, fps = %s WHERE id = %s"),
                    (progress.frames_done, progress.frames_total, progress.fps, job_id),
                )
            return self._end(conn, job, status, now_s, error, outputs)

        return self._pool.run(work)

    def release(self, job_id: str, token: int, now_s: float, *, count_attempt: bool) -> Job:
        def work(conn: Conn) -> Job:
            job = self._fenced(conn, job_id, token)
            check_transition(job.status, JobStatus.QUEUED)
            row = conn.execute(
                self._sql(
                    """UPDATE {s}.jobs SET status = 'queued', lease_owner = NULL, lease_deadline_s = NULL,
                       published_at_s = NULL, attempts = attempts - %s, updated_at_s = %s WHERE id = %s
                       RETURNING *"""
                ),
                (0 if count_attempt else 1, now_s, job_id),
            ).fetchone()
            assert row is not None
            return _job(row)

        return self._pool.run(work)

    # -- control ---------------------------------------------------------------------------------------

    def cancel(self, job_id: str, now_s: float) -> Job:
        def work(conn: Conn) -> Job:
            row = self._locked(conn, job_id)
            if row is None:
                raise JobNotFound(f"no job {job_id}")
            job = _job(row)
            if job.status is JobStatus.QUEUED:
                return self._end(conn, job, JobStatus.CANCELLED, now_s, CANCELLED_BY_REQUEST)
            if job.status is JobStatus.RUNNING:
                updated = conn.execute(
                    self._sql(
                        "UPDATE {s}.jobs SET cancel_requested = true, updated_at_s = %s WHERE id = %s RETURNING *"
                    ),
                    (now_s, job_id),
                ).fetchone()
                assert updated is not None
                return _job(updated)
            return job  # already terminal: cancelling is a no-op, the answer says how it ended

        return self._pool.run(work)

    def reap(self, now_s: float) -> list[str]:
        def work(conn: Conn) -> list[str]:
            # SKIP LOCKED: a job being claimed or finished right now is left to the next pass
            for row in conn.execute(
                self._sql(
                    """SELECT * FROM {s}.jobs WHERE status = 'queued' AND expires_at_s <= %s
                       ORDER BY seq FOR UPDATE SKIP LOCKED"""
                ),
                (now_s,),
            ).fetchall():
                job = _job(row)
                self._end(conn, job, JobStatus.EXPIRED, now_s, expired_error(job))
            requeued: list[str] = []
            for row in conn.execute(
                self._sql(
                    """SELECT * FROM {s}.jobs WHERE status = 'running' AND lease_deadline_s <= %s
                       ORDER BY seq FOR UPDATE SKIP LOCKED"""
                ),
                (now_s,),
            ).fetchall():
                job = _job(row)
                verdict = lease_expired_verdict(job)
                if verdict.action == "end":
                    assert verdict.status is not None
                    self._end(conn, job, verdict.status, now_s, verdict.error)
                else:
                    requeued.append(job.id)
            if requeued:
                conn.execute(
                    self._sql(
                        """UPDATE {s}.jobs SET status = 'queued', lease_owner = NULL, lease_deadline_s = NULL,
                           published_at_s = NULL, updated_at_s = %s WHERE id = ANY(%s)"""
                    ),
                    (now_s, requeued),
                )
            return requeued

        return self._pool.run(work)

    def discard_unpublished(self, job_id: str) -> bool:
        def work(conn: Conn) -> bool:
            cur = conn.execute(
                self._sql(
                    """DELETE FROM {s}.jobs WHERE id = %s AND status = 'queued' AND published_at_s IS NULL
                       AND attempts = 0"""
                ),
                (job_id,),
            )
            return cur.rowcount > 0

        return self._pool.run(work)

    def mark_published(self, job_id: str, now_s: float) -> None:
        self._pool.run(
            lambda conn: conn.execute(
                self._sql("UPDATE {s}.jobs SET published_at_s = %s WHERE id = %s"), (now_s, job_id)
            )
        )

    def unpublished(self, older_than_s: float, limit: int, stale_before_s: float | None = None) -> list[str]:
        def work(conn: Conn) -> list[str]:
            rows = conn.execute(
                self._sql(
                    """SELECT id FROM {s}.jobs WHERE status = 'queued'
                       AND ((published_at_s IS NULL AND created_at_s < %s) OR published_at_s < %s)
                       ORDER BY seq LIMIT %s"""
                ),
                (older_than_s, -1.0 if stale_before_s is None else stale_before_s, limit),
            ).fetchall()
            return [r["id"] for r in rows]

        return self._pool.run(work)

    def fail_dead_lettered(self, job_id: str, now_s: float) -> bool:
        def work(conn: Conn) -> bool:
            row = self._locked(conn, job_id)
            if row is None or row["status"] != JobStatus.QUEUED.value:
                return False
            self._end(conn, _job(row), JobStatus.FAILED, now_s, DEAD_LETTERED)
            return True

        return self._pool.run(work)

    # -- API keys --------------------------------------------------------------------------------------

    def create_api_key(self, key: ApiKey) -> ApiKey:
        self._pool.run(
            lambda conn: conn.execute(
                self._sql(
                    """INSERT INTO {s}.api_keys (id, tenant, name, scopes, key_hash, created_at_s, revoked_at_s)
                       VALUES (%s, %s, %s, %s, %s, %s, %s)"""
                ),
                (key.id, key.tenant, key.name, key.scopes, key.key_hash, key.created_at_s, key.revoked_at_s),
            )
        )
        return key

    def get_api_key(self, key_id: str) -> ApiKey:
        row = self._pool.run(
            lambda conn: conn.execute(self._sql("SELECT * FROM {s}.api_keys WHERE id = %s"), (key_id,)).fetchone()
        )
        if row is None:
            raise ApiKeyNotFound(f"no API key {key_id}")
        return ApiKey(**row)

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = self._pool.run(
            lambda conn: conn.execute(
                self._sql("SELECT * FROM {s}.api_keys WHERE key_hash = %s"), (key_hash,)
            ).fetchone()
        )
        return None if row is None else ApiKey(**row)

    def list_api_keys(self, tenant: str | None = None) -> list[ApiKey]:
        def work(conn: Conn) -> list[ApiKey]:
            rows = conn.execute(
                self._sql(
                    """SELECT * FROM {s}.api_keys WHERE (%(tenant)s::text IS NULL OR tenant = %(tenant)s)
                       ORDER BY created_at_s, id"""
                ),
                {"tenant": tenant},
            ).fetchall()
            return [ApiKey(**r) for r in rows]

        return self._pool.run(work)

    def revoke_api_key(self, key_id: str, now_s: float) -> ApiKey:
        row = self._pool.run(
            lambda conn: conn.execute(
                self._sql(
                    """UPDATE {s}.api_keys SET revoked_at_s = COALESCE(revoked_at_s, %s) WHERE id = %s
                       RETURNING *"""
                ),
                (now_s, key_id),
            ).fetchone(),
            repeatable=True,
        )
        if row is None:
            raise ApiKeyNotFound(f"no API key {key_id}")
        return ApiKey(**row)

    def has_api_keys(self) -> bool:
        return self._pool.run(
            lambda conn: conn.execute(self._sql("SELECT 1 FROM {s}.api_keys LIMIT 1")).fetchone() is not None
        )

    def ping(self) -> None:
        self._pool.run(lambda conn: conn.execute("SELECT 1").fetchone())

    def close(self) -> None:
        self._pool.close()

    # -- outbox (framequeue.notify.outbox.OutboxStore) ---------------------------------------------------

    def due_events(self, now_s: float, limit: int) -> list[OutboxEvent]:
        def work(conn: Conn) -> list[OutboxEvent]:
            rows = conn.execute(
                self._sql(
                    """SELECT * FROM {s}.outbox WHERE delivered_at_s IS NULL AND NOT dead
                       AND next_attempt_at_s <= %s ORDER BY next_attempt_at_s LIMIT %s"""
                ),
                (now_s, limit),
            ).fetchall()
            return [
                OutboxEvent(
                    id=r["id"], job_id=r["job_id"], url=r["url"], secret=r["secret"], payload=bytes(r["payload"]),
                    attempts=r["attempts"], next_attempt_at_s=r["next_attempt_at_s"],
                )
                for r in rows
            ]

        return self._pool.run(work)

    def mark_delivered(self, event_id: str, now_s: float) -> None:
        self._pool.run(
            lambda conn: conn.execute(
                self._sql("UPDATE {s}.outbox SET delivered_at_s = %s, attempts = attempts + 1 WHERE id = %s"),
                (now_s, event_id),
            )
        )

    def mark_retry(self, event_id: str, attempts: int, next_attempt_at_s: float, error: str) -> None:
        self._pool.run(
            lambda conn: conn.execute(
                self._sql("UPDATE {s}.outbox SET attempts = %s, next_attempt_at_s = %s, last_error = %s WHERE id = %s"),
                (attempts, next_attempt_at_s, error[:500], event_id),
            )
        )

    def mark_dead(self, event_id: str, attempts: int, error: str) -> None:
        self._pool.run(
            lambda conn: conn.execute(
                self._sql("UPDATE {s}.outbox SET dead = true, attempts = %s, last_error = %s WHERE id = %s"),
                (attempts, error[:500], event_id),
            )
        )

    def disable_endpoint(self, event_id: str, attempts: int, error: str, now_s: float) -> None:
        def work(conn: Conn) -> None:
            row = conn.execute(
                self._sql(
                    """UPDATE {s}.outbox o SET dead = true, attempts = %s, last_error = %s FROM {s}.jobs j
                       WHERE o.id = %s AND j.id = o.job_id RETURNING o.url, j.tenant"""
                ),
                (attempts, error[:500], event_id),
            ).fetchone()
            if row is None:
                return
            conn.execute(
                self._sql(
                    """INSERT INTO {s}.disabled_webhooks (tenant, url, disabled_at_s, event_id)
                       VALUES (%s, %s, %s, %s) ON CONFLICT (tenant, url) DO NOTHING"""
                ),
                (row["tenant"], row["url"], now_s, event_id),
            )
            conn.execute(
                self._sql(
                    """UPDATE {s}.outbox SET dead = true, last_error = %s WHERE url = %s AND delivered_at_s IS NULL
                       AND NOT dead AND job_id IN (SELECT id FROM {s}.jobs WHERE tenant = %s)"""
                ),
                (ENDPOINT_DISABLED, row["url"], row["tenant"]),
            )

        self._pool.run(work)

    # -- deliveries and disabled webhooks ---------------------------------------------------------------

    def list_deliveries(self, job_id: str) -> list[Delivery]:
        def work(conn: Conn) -> list[Delivery]:
            rows = conn.execute(
                self._sql("SELECT * FROM {s}.outbox WHERE job_id = %s ORDER BY COALESCE(created_at_s, 0), id"),
                (job_id,),
            ).fetchall()
            return [_delivery(r) for r in rows]

        return self._pool.run(work, repeatable=True)

    def get_delivery(self, event_id: str) -> Delivery:
        row = self._pool.run(
            lambda conn: conn.execute(self._sql("SELECT * FROM {s}.outbox WHERE id = %s"), (event_id,)).fetchone(),
            repeatable=True,
        )
        if row is None:
            raise DeliveryNotFound("no such delivery")
        return _delivery(row)

    def replay_delivery(self, event_id: str, now_s: float) -> Delivery:
        row = self._pool.run(
            lambda conn: conn.execute(
                self._sql(
                    """UPDATE {s}.outbox SET dead = false, delivered_at_s = NULL, next_attempt_at_s = %s
                       WHERE id = %s RETURNING *"""
                ),
                (now_s, event_id),
            ).fetchone(),
            repeatable=True,
        )
        if row is None:
            raise DeliveryNotFound("no such delivery")
        return _delivery(row)

    def webhook_disabled(self, tenant: str, url: str) -> DisabledWebhook | None:
        row = self._pool.run(
            lambda conn: conn.execute(
                self._sql("SELECT * FROM {s}.disabled_webhooks WHERE tenant = %s AND url = %s"), (tenant, url)
            ).fetchone(),
            repeatable=True,
        )
        return None if row is None else DisabledWebhook(**row)

    def list_disabled_webhooks(self, tenant: str | None = None) -> list[DisabledWebhook]:
        def work(conn: Conn) -> list[DisabledWebhook]:
            if tenant is None:
                rows = conn.execute(self._sql("SELECT * FROM {s}.disabled_webhooks ORDER BY disabled_at_s, url"))
            else:
                rows = conn.execute(
                    self._sql("SELECT * FROM {s}.disabled_webhooks WHERE tenant = %s ORDER BY disabled_at_s, url"),
                    (tenant,),
                )
            return [DisabledWebhook(**r) for r in rows.fetchall()]

        return self._pool.run(work, repeatable=True)

    def enable_webhook(self, tenant: str, url: str) -> bool:
        deleted = self._pool.run(
            lambda conn: conn.execute(
                self._sql("DELETE FROM {s}.disabled_webhooks WHERE tenant = %s AND url = %s"), (tenant, url)
            ).rowcount,
            repeatable=True,
        )
        return deleted > 0

    # -- internals -------------------------------------------------------------------------------------

    def _write_event(self, conn: Conn, job: Job, event_id: str, url: str, now_s: float) -> None:
        """Write a webhook event of the job (in the caller's transaction); dead at once when its endpoint is
        disabled for the job's tenant."""
        disabled = conn.execute(
            self._sql("SELECT 1 FROM {s}.disabled_webhooks WHERE tenant = %s AND url = %s"), (job.tenant, url)
        ).fetchone() is not None
        conn.execute(
            self._sql(
                """INSERT INTO {s}.outbox (id, job_id, url, secret, payload, next_attempt_at_s, created_at_s, dead,
                   last_error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING"""
            ),
            (event_id, job.id, url, job.webhook_secret, self._render(job), now_s, now_s, disabled,
             ENDPOINT_DISABLED if disabled else None),
        )

    def _get(self, conn: Conn, job_id: str) -> Job:
        row = conn.execute(self._sql("SELECT * FROM {s}.jobs WHERE id = %s"), (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(f"no job {job_id}")
        return _job(row)

    def _locked(self, conn: Conn, job_id: str) -> dict[str, Any] | None:
        """The row, locked until the transaction ends (a racing writer waits, then sees this one's write)."""
        return conn.execute(self._sql("SELECT * FROM {s}.jobs WHERE id = %s FOR UPDATE"), (job_id,)).fetchone()

    def _fenced(self, conn: Conn, job_id: str, token: int) -> Job:
        row = self._locked(conn, job_id)
        if row is None:
            raise JobNotFound(f"no job {job_id}")
        if row["status"] != JobStatus.RUNNING.value or row["lease_token"] != token:
            raise _lost(job_id, token, row)
        return _job(row)

    def _lease_lost(self, conn: Conn, job_id: str, token: int) -> JobNotFound | LeaseLost:
        """Why a fenced UPDATE matched no row."""
        row = conn.execute(self._sql("SELECT status, lease_token FROM {s}.jobs WHERE id = %s"), (job_id,)).fetchone()
        return JobNotFound(f"no job {job_id}") if row is None else _lost(job_id, token, row)

    def _end(
        self,
        conn: Conn,
        job: Job,
        status: JobStatus,
        now_s: float,
        error: JobError | None,
        outputs: dict[str, str] | None = None,
    ) -> Job:
        """Move to a terminal state and write its webhook event in the same transaction."""
        check_transition(job.status, status)
        assert status in TERMINAL
        row = conn.execute(
            self._sql(
                """UPDATE {s}.jobs SET status = %s, finished_at_s = %s, updated_at_s = %s, lease_owner = NULL,
                   lease_deadline_s = NULL, error_code = %s, error_message = %s, eta_s = NULL,
                   outputs = COALESCE(%s, outputs) WHERE id = %s RETURNING *"""
            ),
            (
                status.value, now_s, now_s, None if error is None else error.code,
                None if error is None else error.message, None if outputs is None else Jsonb(outputs), job.id,
            ),
        ).fetchone()
        assert row is not None
        ended = _job(row)
        url = event_url(ended)
        # progress events not yet sent would only arrive stale: the terminal event supersedes them
        conn.execute(
            self._sql(
                """UPDATE {s}.outbox SET dead = true, last_error = %s WHERE job_id = %s AND id LIKE %s
                   AND delivered_at_s IS NULL AND NOT dead"""
            ),
            (f"superseded by job.{status.value}", job.id, _progress_like(job.id)),
        )
        if url and ended.webhook_secret:
            self._write_event(conn, ended, f"evt_{job.id}_{status.value}", url, now_s)
        if ended.failure_uri and status is not JobStatus.SUCCEEDED:  # the failure document, same transaction
            conn.execute(
                self._sql(
                    """INSERT INTO {s}.outbox (id, job_id, url, secret, payload, next_attempt_at_s, created_at_s)
                       VALUES (%s, %s, %s, '', %s, %s, %s) ON CONFLICT (id) DO NOTHING"""
                ),
                (f"doc_{job.id}_{status.value}", job.id, ended.failure_uri, self._render(ended), now_s, now_s),
            )
        return ended

    # -- async endpoints -------------------------------------------------------------------------------

    def create_endpoint(self, ep: Endpoint) -> Endpoint:
        def work(conn: Conn) -> Endpoint:
            row = conn.execute(
                self._sql(
                    """INSERT INTO {s}.endpoints (name, pipeline, params, output_path, failure_path,
                       success_webhook, error_webhook, webhook_secret, max_concurrent_invocations, created_at_s,
                       tenant)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                       ON CONFLICT (name) DO NOTHING RETURNING name"""
                ),
                (ep.name, ep.pipeline, Jsonb(ep.params), ep.output_path, ep.failure_path, ep.success_webhook,
                 ep.error_webhook, ep.webhook_secret, ep.max_concurrent_invocations, ep.created_at_s, ep.tenant),
            ).fetchone()
            if row is None:
                raise EndpointExists(f"an endpoint named {ep.name!r} exists; delete it first")
            return ep

        return self._pool.run(work)

    def get_endpoint(self, name: str, tenant: str) -> Endpoint:
        def work(conn: Conn) -> Endpoint:
            row = conn.execute(
                self._sql("SELECT * FROM {s}.endpoints WHERE name = %s AND tenant = %s"), (name, tenant)
            ).fetchone()
            if row is None:
                raise EndpointNotFound(f"no endpoint named {name!r}")
            return Endpoint(**row)

        return self._pool.run(work)

    def list_endpoints(self, tenant: str) -> list[Endpoint]:
        def work(conn: Conn) -> list[Endpoint]:
            rows = conn.execute(
                self._sql("SELECT * FROM {s}.endpoints WHERE tenant = %s ORDER BY name"), (tenant,)
            ).fetchall()
            return [Endpoint(**r) for r in rows]

        return self._pool.run(work)

    def delete_endpoint(self, name: str, tenant: str) -> None:
        def work(conn: Conn) -> None:
            deleted = conn.execute(
                self._sql("DELETE FROM {s}.endpoints WHERE name = %s AND tenant = %s"), (name, tenant)
            ).rowcount
            if deleted == 0:
                raise EndpointNotFound(f"no endpoint named {name!r}")

        self._pool.run(work)

    # -- model endpoint registry -----------------------------------------------------------------------

    def register_model_endpoint(self, ep: ModelEndpoint) -> ModelEndpoint:
        def work(conn: Conn) -> ModelEndpoint:
            row = conn.execute(
                self._sql(
                    """INSERT INTO {s}.model_endpoints (id, model, version, url, weight, state, created_at_s)
                       VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id"""
                ),
                (ep.id, ep.model, ep.version, ep.url, ep.weight, ep.state, ep.created_at_s),
            ).fetchone()
            if row is None:
                raise ModelEndpointExists(f"{ep.model} version {ep.version} already has an endpoint at {ep.url}")
            return ep

        return self._pool.run(work)

    def list_model_endpoints(self, model: str | None = None) -> list[ModelEndpoint]:
        def work(conn: Conn) -> list[ModelEndpoint]:
            where = "WHERE model = %s" if model is not None else ""
            rows = conn.execute(
                self._sql(f"SELECT * FROM {{s}}.model_endpoints {where} ORDER BY model, version, created_at_s, id"),
                (model,) if model is not None else (),
            ).fetchall()
            return [ModelEndpoint(**r) for r in rows]

        return self._pool.run(work)

    def get_model_endpoint(self, endpoint_id: str) -> ModelEndpoint:
        def work(conn: Conn) -> ModelEndpoint:
            row = conn.execute(
                self._sql("SELECT * FROM {s}.model_endpoints WHERE id = %s"), (endpoint_id,)
            ).fetchone()
            if row is None:
                raise ModelEndpointNotFound(f"no model endpoint {endpoint_id}")
            return ModelEndpoint(**row)

        return self._pool.run(work)

    def set_model_endpoint_weight(self, endpoint_id: str, weight: float) -> ModelEndpoint:
        return self._update_model_endpoint(endpoint_id, "weight", weight)

    def set_model_endpoint_state(self, endpoint_id: str, state: State) -> ModelEndpoint:
        return self._update_model_endpoint(endpoint_id, "state", state)

    def remove_model_endpoint(self, endpoint_id: str) -> None:
        def work(conn: Conn) -> None:
            if conn.execute(self._sql("DELETE FROM {s}.model_endpoints WHERE id = %s"), (endpoint_id,)).rowcount == 0:
                raise ModelEndpointNotFound(f"no model endpoint {endpoint_id}")

        self._pool.run(work)

    def _update_model_endpoint(self, endpoint_id: str, column: str, value: object) -> ModelEndpoint:
        assert column in ("weight", "state")

        def work(conn: Conn) -> ModelEndpoint:
            row = conn.execute(
                self._sql(f"UPDATE {{s}}.model_endpoints SET {column} = %s WHERE id = %s RETURNING *"),
                (value, endpoint_id),
            ).fetchone()
            if row is None:
                raise ModelEndpointNotFound(f"no model endpoint {endpoint_id}")
            return ModelEndpoint(**row)

        return self._pool.run(work, repeatable=True)


def _progress_like(job_id: str) -> str:
    return progress_event_id(job_id, 0)[:-1] + "%"


def _delivery(row: dict[str, Any]) -> Delivery:
    return Delivery(
        id=row["id"], job_id=row["job_id"], url=row["url"], payload=bytes(row["payload"]), attempts=row["attempts"],
        next_attempt_at_s=row["next_attempt_at_s"], delivered_at_s=row["delivered_at_s"], dead=bool(row["dead"]),
        last_error=row["last_error"],
    )


def _lost(job_id: str, token: int, row: dict[str, Any]) -> LeaseLost:
    return LeaseLost(
        f"job {job_id}: lease token {token} no longer holds (status {row['status']}, token {row['lease_token']})"
    )



def _job(row: dict[str, Any]) -> Job:
    return job_from_columns(row)  # psycopg already decodes the jsonb columns
