"""The job store on SQLite (embedded deployment). Contract: framequeue.jobstore.base.JobStore."""

from __future__ import annotations

import json
import sqlite3

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
from framequeue.notify.outbox import ENDPOINT_DISABLED, Delivery, DisabledWebhook, OutboxEvent
from framequeue.sqlitedb import Database, database
from framequeue.tenants.auth import ApiKey

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    pipeline TEXT NOT NULL,
    pipeline_version TEXT NOT NULL,
    input_key TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at_s REAL NOT NULL,
    updated_at_s REAL NOT NULL,
    expires_at_s REAL NOT NULL,
    timeout_s REAL NOT NULL,
    max_attempts INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at_s REAL,
    finished_at_s REAL,
    lease_owner TEXT,
    lease_token INTEGER NOT NULL DEFAULT 0,
    lease_deadline_s REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    frames_done INTEGER NOT NULL DEFAULT 0,
    frames_total INTEGER,
    fps REAL NOT NULL DEFAULT 0,
    eta_s REAL,
    error_code TEXT,
    error_message TEXT,
    outputs TEXT NOT NULL DEFAULT '{}',
    webhook_url TEXT,
    webhook_secret TEXT,
    attributes TEXT NOT NULL DEFAULT '{}',
    idempotency_key TEXT UNIQUE,
    request_hash TEXT,
    published_at_s REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq);
CREATE INDEX IF NOT EXISTS jobs_seq ON jobs (seq);
CREATE INDEX IF NOT EXISTS jobs_unpublished ON jobs (status, published_at_s, created_at_s);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_s REAL NOT NULL,
    delivered_at_s REAL,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (delivered_at_s, dead, next_attempt_at_s);
"""

#: steps after SCHEMA, applied in order once each (PRAGMA user_version counts them)
MIGRATIONS: tuple[str, ...] = (
    """
    ALTER TABLE jobs ADD COLUMN endpoint TEXT;
    ALTER TABLE jobs ADD COLUMN output_uri TEXT;
    ALTER TABLE jobs ADD COLUMN failure_uri TEXT;
    ALTER TABLE jobs ADD COLUMN error_webhook_url TEXT;
    CREATE TABLE IF NOT EXISTS endpoints (
        name TEXT PRIMARY KEY,
        pipeline TEXT NOT NULL,
        params TEXT NOT NULL,
        output_path TEXT NOT NULL,
        failure_path TEXT,
        success_webhook TEXT,
        error_webhook TEXT,
        webhook_secret TEXT,
        max_concurrent_invocations INTEGER NOT NULL,
        created_at_s REAL NOT NULL
    );
    """,
    """
    CREATE TABLE IF NOT EXISTS model_endpoints (
        id TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        version INTEGER NOT NULL,
        url TEXT NOT NULL,
        weight REAL NOT NULL CHECK (weight >= 0),
        state TEXT NOT NULL CHECK (state IN ('active', 'draining')),
        created_at_s REAL NOT NULL,
        UNIQUE (model, version, url)
    );
    """,
    """
    ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
    CREATE INDEX IF NOT EXISTS jobs_tenant ON jobs (tenant, status, seq);
    CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        scopes TEXT NOT NULL CHECK (scopes IN ('read', 'submit', 'admin')),
        key_hash TEXT NOT NULL UNIQUE,
        created_at_s REAL NOT NULL,
        revoked_at_s REAL
    );
    CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant, created_at_s);
    """,
    """
    ALTER TABLE outbox ADD COLUMN created_at_s REAL;
    CREATE INDEX IF NOT EXISTS outbox_job ON outbox (job_id);
    CREATE TABLE IF NOT EXISTS disabled_webhooks (
        tenant TEXT NOT NULL,
        url TEXT NOT NULL,
        disabled_at_s REAL NOT NULL,
        event_id TEXT NOT NULL,
        PRIMARY KEY (tenant, url)
    );
    """,
    """
    ALTER TABLE endpoints ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
    """,
)



class SQLiteJobStore:
    def __init__(self, url: str, render: PayloadRenderer) -> None:
        self._db: Database = database(url)
        self._render = render
        try:
            self._db.conn().executescript(SCHEMA)
            self._migrate()
        except sqlite3.Error as exc:
            raise ServiceUnavailable(f"cannot prepare the job store: {exc}") from exc

    def _migrate(self) -> None:
        with self._db.write() as conn:  # the write lock: two processes opening at once migrate once
            done = conn.execute("PRAGMA user_version").fetchone()[0]
            for version, step in enumerate(MIGRATIONS[done:], start=done + 1):
                for statement in filter(str.strip, step.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version}")

    # -- submit and read -------------------------------------------------------------------------------

    def create(self, job: Job, request_hash: str | None = None) -> tuple[Job, bool]:
        with self._db.write() as conn:
            if job.idempotency_key is not None:
                row = conn.execute(
                    "SELECT * FROM jobs WHERE idempotency_key = ?", (job.idempotency_key,)
                ).fetchone()
                if row is not None:
                    if row["request_hash"] != request_hash:
                        raise IdempotencyConflict(
                            "this Idempotency-Key was used with a different request body; "
                            "use a new key for a new job"
                        )
                    return _job(row), False
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
            conn.execute(
                """INSERT INTO jobs (id, seq, pipeline, pipeline_version, input_key, params, status,
                   created_at_s, updated_at_s, expires_at_s, timeout_s, max_attempts, webhook_url,
                   webhook_secret, attributes, idempotency_key, request_hash, endpoint, output_uri,
                   failure_uri, error_webhook_url, tenant)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    job.id, seq, job.pipeline, job.pipeline_version, job.input_key, json.dumps(job.params),
                    JobStatus.QUEUED.value, job.created_at_s, job.updated_at_s, job.expires_at_s,
                    job.timeout_s, job.max_attempts, job.webhook_url, job.webhook_secret,
                    json.dumps(job.attributes), job.idempotency_key, request_hash, job.endpoint,
                    job.output_uri, job.failure_uri, job.error_webhook_url, job.tenant,
                ),
            )
            return self._get(conn, job.id), True

    def get(self, job_id: str) -> Job:
        return self._get(self._db.conn(), job_id)

    def list_jobs(
        self, status: JobStatus | None = None, limit: int = 50, after: str | None = None, tenant: str | None = None
    ) -> list[Job]:
        conn = self._db.conn()
        clauses, args = [], []
        if tenant is not None:
            clauses.append("tenant = ?")
            args.append(tenant)
        if status is not None:
            clauses.append("status = ?")
            args.append(status.value)
        if after is not None:
            clauses.append("seq < (SELECT seq FROM jobs WHERE id = ?)")
            args.append(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = conn.execute(f"SELECT * FROM jobs {where} ORDER BY seq DESC LIMIT ?", (*args, limit))
        return [_job(r) for r in rows]

    def count_queued(self, tenant: str) -> int:
        row = self._db.conn().execute(
            "SELECT COUNT(*) FROM jobs WHERE tenant = ? AND status = 'queued'", (tenant,)
        ).fetchone()
        return int(row[0])

    # -- the worker's writes, each fenced by the lease token ---------------------------------------------

    def claim(self, job_id: str, owner: str, lease_s: float, now_s: float) -> Job | None:
        with self._db.write() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            job = _job(row)
            verdict = claim_verdict(job, now_s)
            if verdict.action == "end":
                assert verdict.status is not None
                self._end(conn, job, verdict.status, now_s, verdict.error)
            if verdict.action != "claim":
                return None
            conn.execute(
                """UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_token = lease_token + 1,
                   lease_owner = ?, lease_deadline_s = ?, started_at_s = COALESCE(started_at_s, ?),
                   updated_at_s = ?, frames_done = 0, fps = 0, eta_s = NULL WHERE id = ?""",
                (owner, now_s + lease_s, now_s, now_s, job_id),
            )
            return self._get(conn, job_id)

    def renew(self, job_id: str, token: int, lease_s: float, now_s: float) -> bool:
        with self._db.write() as conn:
            self._fenced(conn, job_id, token)
            conn.execute(
                "UPDATE jobs SET lease_deadline_s = MAX(lease_deadline_s, ?), updated_at_s = ? WHERE id = ?",
                (now_s + lease_s, now_s, job_id),
            )
            return bool(conn.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()[0])

    def report_progress(
        self, job_id: str, token: int, progress: JobProgress, now_s: float, *, event: bool = False
    ) -> bool:
        with self._db.write() as conn:
            row = self._fenced(conn, job_id, token)
            conn.execute(
                """UPDATE jobs SET frames_done = ?, frames_total = ?, fps = ?, eta_s = ?, updated_at_s = ?
                   WHERE id = ?""",
                (progress.frames_done, progress.frames_total, progress.fps, progress.eta_s, now_s, job_id),
            )
            if event:
                job = self._get(conn, job_id)
                if job.webhook_url and job.webhook_secret:
                    count = conn.execute(
                        "SELECT COUNT(*) FROM outbox WHERE job_id = ? AND id LIKE ?", (job_id, _progress_like(job_id))
                    ).fetchone()[0]
                    self._write_event(conn, job, progress_event_id(job_id, count + 1), job.webhook_url, now_s)
            return bool(row["cancel_requested"])

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
        with self._db.write() as conn:
            job = _job(self._fenced(conn, job_id, token))
            if outputs is not None:
                conn.execute("UPDATE jobs SET outputs = ? WHERE id = ?", (json.dumps(outputs), job_id))
            if progress is not None:
                conn.execute(
                    "UPDATE jobs SET frames_done = ?, frames_total = ?, fps = ? WHERE id = ?",
                    (progress.frames_done, progress.frames_total, progress.fps, job_id),
                )
            return self._end(conn, job, status, now_s, error)

    def release(self, job_id: str, token: int, now_s: float, *, count_attempt: bool) -> Job:
        with self._db.write() as conn:
            job = _job(self._fenced(conn, job_id, token))
            check_transition(job.status, JobStatus.QUEUED)
            conn.execute(
                """UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_deadline_s = NULL,
                   published_at_s = NULL, attempts = attempts - ?, updated_at_s = ? WHERE id = ?""",
                (0 if count_attempt else 1, now_s, job_id),
            )
            return self._get(conn, job_id)

    # -- control ---------------------------------------------------------------------------------------

    def cancel(self, job_id: str, now_s: float) -> Job:
        with self._db.write() as conn:
            job = self._get(conn, job_id)
            if job.status is JobStatus.QUEUED:
                return self._end(conn, job, JobStatus.CANCELLED, now_s, CANCELLED_BY_REQUEST)
            if job.status is JobStatus.RUNNING:
                conn.execute(
                    "UPDATE jobs SET cancel_requested = 1, updated_at_s = ? WHERE id = ?", (now_s, job_id)
                )
                return self._get(conn, job_id)
            return job  # already terminal: cancelling is a no-op, the answer says how it ended

    def reap(self, now_s: float) -> list[str]:
        requeued: list[str] = []
        with self._db.write() as conn:
            for row in conn.execute(
                "SELECT * FROM jobs WHERE status = 'queued' AND expires_at_s <= ?", (now_s,)
            ).fetchall():
                job = _job(row)
                self._end(conn, job, JobStatus.EXPIRED, now_s, expired_error(job))
            for row in conn.execute(
                "SELECT * FROM jobs WHERE status = 'running' AND lease_deadline_s <= ?", (now_s,)
            ).fetchall():
                job = _job(row)
                verdict = lease_expired_verdict(job)
                if verdict.action == "end":
                    assert verdict.status is not None
                    self._end(conn, job, verdict.status, now_s, verdict.error)
                else:
                    conn.execute(
                        """UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_deadline_s = NULL,
                           published_at_s = NULL, updated_at_s = ? WHERE id = ?""",
                        (now_s, job.id),
                    )
                    requeued.append(job.id)
        return requeued

    def discard_unpublished(self, job_id: str) -> bool:
        with self._db.write() as conn:
            cur = conn.execute(
                "DELETE FROM jobs WHERE id = ? AND status = 'queued' AND published_at_s IS NULL AND attempts = 0",
                (job_id,),
            )
            return cur.rowcount > 0

    def mark_published(self, job_id: str, now_s: float) -> None:
        with self._db.write() as conn:
            conn.execute("UPDATE jobs SET published_at_s = ? WHERE id = ?", (now_s, job_id))

    def unpublished(self, older_than_s: float, limit: int, stale_before_s: float | None = None) -> list[str]:
        rows = self._db.conn().execute(
            """SELECT id FROM jobs WHERE status = 'queued'
               AND ((published_at_s IS NULL AND created_at_s < ?) OR published_at_s < ?)
               ORDER BY seq LIMIT ?""",
            (older_than_s, -1.0 if stale_before_s is None else stale_before_s, limit),
        )
        return [r["id"] for r in rows]

    def fail_dead_lettered(self, job_id: str, now_s: float) -> bool:
        with self._db.write() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row["status"] != JobStatus.QUEUED.value:
                return False
            self._end(conn, _job(row), JobStatus.FAILED, now_s, DEAD_LETTERED)
            return True

    # -- API keys --------------------------------------------------------------------------------------

    def create_api_key(self, key: ApiKey) -> ApiKey:
        with self._db.write() as conn:
            conn.execute(
                """INSERT INTO api_keys (id, tenant, name, scopes, key_hash, created_at_s, revoked_at_s)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (key.id, key.tenant, key.name, key.scopes, key.key_hash, key.created_at_s, key.revoked_at_s),
            )
        return key

    def get_api_key(self, key_id: str) -> ApiKey:
        row = self._db.conn().execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            raise ApiKeyNotFound(f"no API key {key_id}")
        return _api_key(row)

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = self._db.conn().execute("SELECT * FROM api_keys WHERE key_hash = ?", (key_hash,)).fetchone()
        return None if row is None else _api_key(row)

    def list_api_keys(self, tenant: str | None = None) -> list[ApiKey]:
        where, args = ("WHERE tenant = ?", (tenant,)) if tenant is not None else ("", ())
        rows = self._db.conn().execute(f"SELECT * FROM api_keys {where} ORDER BY created_at_s, id", args)
        return [_api_key(r) for r in rows]

    def revoke_api_key(self, key_id: str, now_s: float) -> ApiKey:
        with self._db.write() as conn:
            row = conn.execute(
                "UPDATE api_keys SET revoked_at_s = COALESCE(revoked_at_s, ?) WHERE id = ? RETURNING *",
                (now_s, key_id),
            ).fetchone()
        if row is None:
            raise ApiKeyNotFound(f"no API key {key_id}")
        return _api_key(row)

    def has_api_keys(self) -> bool:
        return self._db.conn().execute("SELECT 1 FROM api_keys LIMIT 1").fetchone() is not None

    def ping(self) -> None:
        try:
            self._db.conn().execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise ServiceUnavailable(f"the job store does not answer: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    # -- outbox (framequeue.notify.outbox.OutboxStore) ---------------------------------------------------

    def due_events(self, now_s: float, limit: int) -> list[OutboxEvent]:
        rows = self._db.conn().execute(
            """SELECT * FROM outbox WHERE delivered_at_s IS NULL AND dead = 0 AND next_attempt_at_s <= ?
               ORDER BY next_attempt_at_s LIMIT ?""",
            (now_s, limit),
        )
        return [
            OutboxEvent(
                id=r["id"], job_id=r["job_id"], url=r["url"], secret=r["secret"], payload=bytes(r["payload"]),
                attempts=r["attempts"], next_attempt_at_s=r["next_attempt_at_s"],
            )
            for r in rows
        ]

    def mark_delivered(self, event_id: str, now_s: float) -> None:
        with self._db.write() as conn:
            conn.execute(
                "UPDATE outbox SET delivered_at_s = ?, attempts = attempts + 1 WHERE id = ?", (now_s, event_id)
            )

    def mark_retry(self, event_id: str, attempts: int, next_attempt_at_s: float, error: str) -> None:
        with self._db.write() as conn:
            conn.execute(
                "UPDATE outbox SET attempts = ?, next_attempt_at_s = ?, last_error = ? WHERE id = ?",
                (attempts, next_attempt_at_s, error[:500], event_id),
            )

    def mark_dead(self, event_id: str, attempts: int, error: str) -> None:
        with self._db.write() as conn:
            conn.execute(
                "UPDATE outbox SET dead = 1, attempts = ?, last_error = ? WHERE id = ?",
                (attempts, error[:500], event_id),
            )

    def disable_endpoint(self, event_id: str, attempts: int, error: str, now_s: float) -> None:
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT o.url, j.tenant FROM outbox o JOIN jobs j ON j.id = o.job_id WHERE o.id = ?", (event_id,)
            ).fetchone()
            conn.execute(
                "UPDATE outbox SET dead = 1, attempts = ?, last_error = ? WHERE id = ?",
                (attempts, error[:500], event_id),
            )
            if row is None:
                return
            conn.execute(
                """INSERT OR IGNORE INTO disabled_webhooks (tenant, url, disabled_at_s, event_id)
                   VALUES (?, ?, ?, ?)""",
                (row["tenant"], row["url"], now_s, event_id),
            )
            conn.execute(
                """UPDATE outbox SET dead = 1, last_error = ? WHERE url = ? AND delivered_at_s IS NULL AND dead = 0
                   AND job_id IN (SELECT id FROM jobs WHERE tenant = ?)""",
                (ENDPOINT_DISABLED, row["url"], row["tenant"]),
            )

    # -- deliveries and disabled webhooks ---------------------------------------------------------------

    def list_deliveries(self, job_id: str) -> list[Delivery]:
        rows = self._db.conn().execute(
            "SELECT * FROM outbox WHERE job_id = ? ORDER BY COALESCE(created_at_s, 0), rowid", (job_id,)
        )
        return [_delivery(r) for r in rows]

    def get_delivery(self, event_id: str) -> Delivery:
        row = self._db.conn().execute("SELECT * FROM outbox WHERE id = ?", (event_id,)).fetchone()
        if row is None:
            raise DeliveryNotFound("no such delivery")
        return _delivery(row)

    def replay_delivery(self, event_id: str, now_s: float) -> Delivery:
        with self._db.write() as conn:
            row = conn.execute(
                """UPDATE outbox SET dead = 0, delivered_at_s = NULL, next_attempt_at_s = ? WHERE id = ?
                   RETURNING *""",
                (now_s, event_id),
            ).fetchone()
        if row is None:
            raise DeliveryNotFound("no such delivery")
        return _delivery(row)

    def webhook_disabled(self, tenant: str, url: str) -> DisabledWebhook | None:
        row = self._db.conn().execute(
            "SELECT * FROM disabled_webhooks WHERE tenant = ? AND url = ?", (tenant, url)
        ).fetchone()
        return None if row is None else DisabledWebhook(**dict(zip(row.keys(), row, strict=True)))

    def list_disabled_webhooks(self, tenant: str | None = None) -> list[DisabledWebhook]:
        where, args = ("WHERE tenant = ?", (tenant,)) if tenant is not None else ("", ())
        rows = self._db.conn().execute(f"SELECT * FROM disabled_webhooks {where} ORDER BY disabled_at_s, url", args)
        return [DisabledWebhook(**dict(zip(r.keys(), r, strict=True))) for r in rows]

    def enable_webhook(self, tenant: str, url: str) -> bool:
        with self._db.write() as conn:
            cur = conn.execute("DELETE FROM disabled_webhooks WHERE tenant = ? AND url = ?", (tenant, url))
            return cur.rowcount > 0

    # -- internals -------------------------------------------------------------------------------------

    def _write_event(self, conn: sqlite3.Connection, job: Job, event_id: str, url: str, now_s: float) -> None:
        """Write a webhook event of the job (in the caller's transaction); dead at once when its endpoint is
        disabled for the job's tenant."""
        disabled = conn.execute(
            "SELECT 1 FROM disabled_webhooks WHERE tenant = ? AND url = ?", (job.tenant, url)
        ).fetchone() is not None
        conn.execute(
            """INSERT OR IGNORE INTO outbox (id, job_id, url, secret, payload, next_attempt_at_s, created_at_s,
               dead, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (event_id, job.id, url, job.webhook_secret, self._render(job), now_s, now_s, int(disabled),
             ENDPOINT_DISABLED if disabled else None),
        )

    def _get(self, conn: sqlite3.Connection, job_id: str) -> Job:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(f"no job {job_id}")
        return _job(row)

    def _fenced(self, conn: sqlite3.Connection, job_id: str, token: int) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(f"no job {job_id}")
        if row["status"] != JobStatus.RUNNING.value or row["lease_token"] != token:
            raise LeaseLost(
                f"job {job_id}: lease token {token} no longer holds "
                f"(status {row['status']}, token {row['lease_token']})"
            )
        fenced: sqlite3.Row = row
        return fenced

    def _end(
        self, conn: sqlite3.Connection, job: Job, status: JobStatus, now_s: float, error: JobError | None
    ) -> Job:
        """Move to a terminal state and write its webhook event in the same transaction."""
        check_transition(job.status, status)
        assert status in TERMINAL
        conn.execute(
            """UPDATE jobs SET status = ?, finished_at_s = ?, updated_at_s = ?, lease_owner = NULL,
               lease_deadline_s = NULL, error_code = ?, error_message = ?, eta_s = NULL WHERE id = ?""",
            (
                status.value, now_s, now_s, None if error is None else error.code,
                None if error is None else error.message, job.id,
            ),
        )
        ended = self._get(conn, job.id)
        url = event_url(ended)
        # progress events not yet sent would only arrive stale: the terminal event supersedes them
        conn.execute(
            """UPDATE outbox SET dead = 1, last_error = ? WHERE job_id = ? AND id LIKE ?
               AND delivered_at_s IS NULL AND dead = 0""",
            (f"superseded by job.{status.value}", job.id, _progress_like(job.id)),
        )
        if url and ended.webhook_secret:
            self._write_event(conn, ended, f"evt_{job.id}_{status.value}", url, now_s)
        if ended.failure_uri and status is not JobStatus.SUCCEEDED:  # the failure document, same transaction
            conn.execute(
                """INSERT OR IGNORE INTO outbox (id, job_id, url, secret, payload, next_attempt_at_s, created_at_s)
                   VALUES (?, ?, ?, '', ?, ?, ?)""",
                (f"doc_{job.id}_{status.value}", job.id, ended.failure_uri, self._render(ended), now_s, now_s),
            )
        return ended

    # -- async endpoints -------------------------------------------------------------------------------

    def create_endpoint(self, ep: Endpoint) -> Endpoint:
        with self._db.write() as conn:
            try:
                conn.execute(
                    """INSERT INTO endpoints (name, pipeline, params, output_path, failure_path, success_webhook,
                       error_webhook, webhook_secret, max_concurrent_invocations, created_at_s, tenant)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (ep.name, ep.pipeline, json.dumps(ep.params), ep.output_path, ep.failure_path,
                     ep.success_webhook, ep.error_webhook, ep.webhook_secret, ep.max_concurrent_invocations,
                     ep.created_at_s, ep.tenant),
                )
            except sqlite3.IntegrityError:
                raise EndpointExists(f"an endpoint named {ep.name!r} exists; delete it first") from None
        return ep

    def get_endpoint(self, name: str, tenant: str) -> Endpoint:
        row = self._db.conn().execute(
            "SELECT * FROM endpoints WHERE name = ? AND tenant = ?", (name, tenant)
        ).fetchone()
        if row is None:
            raise EndpointNotFound(f"no endpoint named {name!r}")
        return _endpoint(row)

    def list_endpoints(self, tenant: str) -> list[Endpoint]:
        rows = self._db.conn().execute("SELECT * FROM endpoints WHERE tenant = ? ORDER BY name", (tenant,))
        return [_endpoint(r) for r in rows]

    def delete_endpoint(self, name: str, tenant: str) -> None:
        with self._db.write() as conn:
            if conn.execute("DELETE FROM endpoints WHERE name = ? AND tenant = ?", (name, tenant)).rowcount == 0:
                raise EndpointNotFound(f"no endpoint named {name!r}")

    # -- model endpoint registry -----------------------------------------------------------------------

    def register_model_endpoint(self, ep: ModelEndpoint) -> ModelEndpoint:
        with self._db.write() as conn:
            try:
                conn.execute(
                    """INSERT INTO model_endpoints (id, model, version, url, weight, state, created_at_s)
                       VALUES (?, ?, ?, ?, ?, ?, ?)""",
                    (ep.id, ep.model, ep.version, ep.url, ep.weight, ep.state, ep.created_at_s),
                )
            except sqlite3.IntegrityError:
                raise ModelEndpointExists(
                    f"{ep.model} version {ep.version} already has an endpoint at {ep.url}"
                ) from None
        return ep

    def list_model_endpoints(self, model: str | None = None) -> list[ModelEndpoint]:
        where, args = ("WHERE model = ?", (model,)) if model is not None else ("", ())
        rows = self._db.conn().execute(
            f"SELECT * FROM model_endpoints {where} ORDER BY model, version, created_at_s, id", args
        )
        return [_model_endpoint(r) for r in rows]

    def get_model_endpoint(self, endpoint_id: str) -> ModelEndpoint:
        row = self._db.conn().execute("SELECT * FROM model_endpoints WHERE id = ?", (endpoint_id,)).fetchone()
        if row is None:
            raise ModelEndpointNotFound(f"no model endpoint {endpoint_id}")
        return _model_endpoint(row)

    def set_model_endpoint_weight(self, endpoint_id: str, weight: float) -> ModelEndpoint:
        return self._update_model_endpoint(endpoint_id, "weight", weight)

    def set_model_endpoint_state(self, endpoint_id: str, state: State) -> ModelEndpoint:
        return self._update_model_endpoint(endpoint_id, "state", state)

    def remove_model_endpoint(self, endpoint_id: str) -> None:
        with self._db.write() as conn:
            if conn.execute("DELETE FROM model_endpoints WHERE id = ?", (endpoint_id,)).rowcount == 0:
                raise ModelEndpointNotFound(f"no model endpoint {endpoint_id}")

    def _update_model_endpoint(self, endpoint_id: str, column: str, value: object) -> ModelEndpoint:
        assert column in ("weight", "state")
        with self._db.write() as conn:
            row = conn.execute(
                f"UPDATE model_endpoints SET {column} = ? WHERE id = ? RETURNING *", (value, endpoint_id)
            ).fetchone()
        if row is None:
            raise ModelEndpointNotFound(f"no model endpoint {endpoint_id}")
        return _model_endpoint(row)


def _progress_like(job_id: str) -> str:
    return progress_event_id(job_id, 0)[:-1] + "%"


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        id=row["id"], job_id=row["job_id"], url=row["url"], payload=bytes(row["payload"]), attempts=row["attempts"],
        next_attempt_at_s=row["next_attempt_at_s"], delivered_at_s=row["delivered_at_s"], dead=bool(row["dead"]),
        last_error=row["last_error"],
    )


def _api_key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(**dict(zip(row.keys(), row, strict=True)))


def _model_endpoint(row: sqlite3.Row) -> ModelEndpoint:
    return ModelEndpoint(**dict(zip(row.keys(), row, strict=True)))


def _endpoint(row: sqlite3.Row) -> Endpoint:
    columns = dict(zip(row.keys(), row, strict=True))
    columns["params"] = json.loads(columns["params"])
    return Endpoint(**columns)


def _job(row: sqlite3.Row) -> Job:
    columns = dict(zip(row.keys(), row, strict=True))
    for name in ("params", "outputs", "attributes"):  # JSON stored as text
        columns[name] = json.loads(columns[name])
    return job_from_columns(columns)
