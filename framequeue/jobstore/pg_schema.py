"""PostgreSQL plumbing shared by the job store and the queue: URL options, a small connection pool that
translates psycopg's errors, and the job store's numbered migrations.

Sync psycopg, not AsyncConnection behind framequeue.brokers.aio.LoopThread: the protocols are synchronous and are
called from many threads, and psycopg's sync connection already blocks without holding the GIL. A loop
thread would add a hop per call, serialise every caller onto one thread, and turn a call timeout into a
cancelled coroutine in the middle of a transaction, with the connection in an unknown state. LISTEN/NOTIFY,
the one thing an event loop is usually wanted for, works synchronously with `Connection.notifies(timeout=)`.

Migrations: `<schema>.schema_migrations` records the versions applied. `migrate` runs at open in one
transaction under a transaction-scoped advisory lock keyed on the schema, so processes starting together
apply each step once; the steps are idempotent too (IF NOT EXISTS), and only ever added at the end.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row

from framequeue.errors import InvalidParams, ServiceUnavailable

T = TypeVar("T")

Conn = psycopg.Connection[DictRow]

DEFAULT_SCHEMA = "framequeue"
#: connections one store or queue opens at most; more callers wait for one to come back
POOL_SIZE = 8
#: seconds a caller waits for a free connection before ServiceUnavailable
CHECKOUT_TIMEOUT_S = 30.0
#: libpq settings applied unless the URL sets them: fail fast on a dead host (connect_timeout, s), notice
#: a vanished peer within about a minute, idle (keepalives_*, s) or mid-request (tcp_user_timeout, ms)
CONNECT_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 5,
    "application_name": "framequeue",
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 60_000,
}
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class PgURL:
    #: the URL for libpq, without framequeue's own `schema` parameter
    conninfo: str
    schema: str


def parse_pg_url(url: str) -> PgURL:
    """postgresql://user@host:5432/db?schema=NAME (default "framequeue"); other parameters go to libpq."""
    base, _, query = url.split("#", 1)[0].partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    schema = next((v for k, v in reversed(params) if k == "schema"), DEFAULT_SCHEMA)
    if not _SCHEMA_NAME.match(schema):
        raise InvalidParams(f"schema name {schema!r}: use 1-63 letters, digits or '_', not starting with a digit")
    rest = [(k, v) for k, v in params if k != "schema"]
    # rebuilt by hand: urlunsplit would turn postgresql:///db?host=/run/postgresql into postgresql:/db
    return PgURL(conninfo=base + (f"?{urlencode(rest)}" if rest else ""), schema=schema)


def unavailable(what: str, exc: psycopg.Error) -> ServiceUnavailable:
    """The error a caller sees when PostgreSQL cannot be reached or gave up (first line of libpq's text)."""
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ServiceUnavailable(f"{what} is unavailable: {detail}")


class Connections:
    """A small thread-safe pool of psycopg connections; `run` is one transaction on one of them."""

    def __init__(self, conninfo: str, what: str, size: int = POOL_SIZE) -> None:
        self._conninfo = conninfo
        #: names the backend in error messages, e.g. "the job store"
        self._what = what
        self._size = size
        self._idle: list[Conn] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._closed = False

    def connect(self, *, autocommit: bool = False) -> Conn:
        """A new connection outside the pool (the queue's LISTEN connection uses one)."""
        given = conninfo_to_dict(self._conninfo)
        extra = {k: v for k, v in CONNECT_DEFAULTS.items() if k not in given}
        try:
            return psycopg.connect(self._conninfo, autocommit=autocommit, row_factory=dict_row, **extra)
        except psycopg.OperationalError as exc:
            raise unavailable(self._what, exc) from exc

    def run(self, work: Callable[[Conn], T]) -> T:
        """Run `work` in one transaction and commit it; OperationalError becomes ServiceUnavailable.

        A pooled connection found dead before the commit (the server restarted, or ended the session) is
        replaced and `work` runs once more: the server rolled back everything it did. A connection lost
        during the commit leaves the outcome unknown, so that is never retried. `work` must have no effect
        outside the transaction.
        """
        retried = False
        while True:
            conn, reused = self._checkout()
            try:
                try:
                    result = work(conn)
                except psycopg.OperationalError as exc:
                    if conn.broken and reused and not retried:
                        retried = True
                        self._drop_idle()  # they very likely died with it
                        continue
                    raise unavailable(self._what, exc) from exc
                try:
                    conn.commit()
                except psycopg.OperationalError as exc:
                    raise unavailable(self._what, exc) from exc
                return result
            finally:
                self._checkin(conn)

    def close(self) -> None:
        """Close idle connections now, and the ones in use as they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _checkout(self) -> tuple[Conn, bool]:
        if not self._slots.acquire(timeout=CHECKOUT_TIMEOUT_S):
            raise ServiceUnavailable(f"{self._what}: all {self._size} connections stayed busy")
        try:
            with self._lock:
                if self._closed:
                    raise ServiceUnavailable(f"{self._what} is closed")
                while self._idle:
                    conn = self._idle.pop()
                    if not conn.closed:
                        return conn, True
            return self.connect(), False
        except BaseException:
            self._slots.release()
            raise

    def _checkin(self, conn: Conn) -> None:
        try:
            if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                conn.rollback()
        except psycopg.Error:
            conn.close()
        with self._lock:
            keep = not self._closed and not conn.closed
            if keep:
                self._idle.append(conn)
        if not keep:
            conn.close()
        self._slots.release()

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def lock_schema(conn: Conn, schema: str) -> None:
    """Take the schema's DDL lock until the transaction ends (advisory: only framequeue's DDL waits)."""
    digest = hashlib.blake2b(f"framequeue.ddl:{schema}".encode(), digest_size=8).digest()
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (int.from_bytes(digest, "big", signed=True),))
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    #: statements with `{s}` for the schema; each idempotent
    statements: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "jobs and the webhook outbox", """
        CREATE TABLE IF NOT EXISTS {s}.jobs (
            id text PRIMARY KEY,
            seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            pipeline text NOT NULL,
            pipeline_version text NOT NULL,
            input_key text NOT NULL,
            params jsonb NOT NULL,
            status text NOT NULL,
            created_at_s double precision NOT NULL,
            updated_at_s double precision NOT NULL,
            expires_at_s double precision NOT NULL,
            timeout_s double precision NOT NULL,
            max_attempts integer NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            started_at_s double precision,
            finished_at_s double precision,
            lease_owner text,
            lease_token bigint NOT NULL DEFAULT 0,
            lease_deadline_s double precision,
            cancel_requested boolean NOT NULL DEFAULT false,
            frames_done bigint NOT NULL DEFAULT 0,
            frames_total bigint,
            fps double precision NOT NULL DEFAULT 0,
            eta_s double precision,
            error_code text,
            error_message text,
            outputs jsonb NOT NULL DEFAULT '{{}}',
            webhook_url text,
            webhook_secret text,
            attributes jsonb NOT NULL DEFAULT '{{}}',
            idempotency_key text UNIQUE,
            request_hash text
        );
        CREATE INDEX IF NOT EXISTS jobs_status ON {s}.jobs (status, seq);
        CREATE INDEX IF NOT EXISTS jobs_queued_expiry ON {s}.jobs (expires_at_s) WHERE status = 'queued';
        CREATE INDEX IF NOT EXISTS jobs_running_lease ON {s}.jobs (lease_deadline_s) WHERE status = 'running';
        CREATE TABLE IF NOT EXISTS {s}.outbox (
            id text PRIMARY KEY,
            job_id text NOT NULL,
            url text NOT NULL,
            secret text NOT NULL,
            payload bytea NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at_s double precision NOT NULL,
            delivered_at_s double precision,
            dead boolean NOT NULL DEFAULT false,
            last_error text
        );
        CREATE INDEX IF NOT EXISTS outbox_due ON {s}.outbox (next_attempt_at_s)
            WHERE delivered_at_s IS NULL AND NOT dead;
    """),
    Migration(2, "published_at_s: queued jobs whose message the broker never confirmed", """
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS published_at_s double precision;
        CREATE INDEX IF NOT EXISTS jobs_unpublished ON {s}.jobs (created_at_s)
            WHERE status = 'queued' AND published_at_s IS NULL;
    """),
    Migration(3, "async endpoints, and where a job delivers its results", """
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS endpoint text;
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS output_uri text;
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS failure_uri text;
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS error_webhook_url text;
        CREATE TABLE IF NOT EXISTS {s}.endpoints (
            name text PRIMARY KEY,
            pipeline text NOT NULL,
            params jsonb NOT NULL,
            output_path text NOT NULL,
            failure_path text,
            success_webhook text,
            error_webhook text,
            webhook_secret text,
            max_concurrent_invocations integer NOT NULL,
            created_at_s double precision NOT NULL
        );
    """),
    Migration(4, "the model endpoint registry: (model, version) -> endpoints with weights", """
        CREATE TABLE IF NOT EXISTS {s}.model_endpoints (
            id text PRIMARY KEY,
            model text NOT NULL,
            version integer NOT NULL,
            url text NOT NULL,
            weight double precision NOT NULL CHECK (weight >= 0),
            state text NOT NULL CHECK (state IN ('active', 'draining')),
            created_at_s double precision NOT NULL,
            UNIQUE (model, version, url)
        );
    """),
    Migration(5, "tenants: every job belongs to one; hashed, scoped, revocable API keys", """
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT 'default';
        CREATE INDEX IF NOT EXISTS jobs_tenant ON {s}.jobs (tenant, status, seq);
        CREATE TABLE IF NOT EXISTS {s}.api_keys (
            id text PRIMARY KEY,
            tenant text NOT NULL,
            name text NOT NULL,
            scopes text NOT NULL CHECK (scopes IN ('read', 'submit', 'admin')),
            key_hash text NOT NULL UNIQUE,
            created_at_s double precision NOT NULL,
            revoked_at_s double precision
        );
        CREATE INDEX IF NOT EXISTS api_keys_tenant ON {s}.api_keys (tenant, created_at_s);
    """),
    Migration(6, "deliveries per job; webhook endpoints disabled by a 410, per tenant", """
        ALTER TABLE {s}.outbox ADD COLUMN IF NOT EXISTS created_at_s double precision;
        CREATE INDEX IF NOT EXISTS outbox_job ON {s}.outbox (job_id);
        CREATE TABLE IF NOT EXISTS {s}.disabled_webhooks (
            tenant text NOT NULL,
            url text NOT NULL,
            disabled_at_s double precision NOT NULL,
            event_id text NOT NULL,
            PRIMARY KEY (tenant, url)
        );
    """),
    Migration(7, "async endpoints belong to a tenant", """
        ALTER TABLE {s}.endpoints ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT 'default';
    """),
)


def migrate(conn: Conn, schema: str, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the steps not yet recorded, in the caller's transaction; returns the versions applied."""
    lock_schema(conn, schema)
    s = sql.Identifier(schema)
    conn.execute(sql.SQL(
        """CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
               version integer PRIMARY KEY,
               name text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"""
    ).format(s=s))
    done = {r["version"] for r in conn.execute(sql.SQL("SELECT version FROM {s}.schema_migrations").format(s=s))}
    applied = []
    for step in migrations:
        if step.version in done:
            continue
        conn.execute(sql.SQL(step.statements).format(s=s))
        conn.execute(
            sql.SQL("INSERT INTO {s}.schema_migrations (version, name) VALUES (%s, %s)").format(s=s),
            (step.version, step.name),
        )
        applied.append(step.version)
    return applied


class Statements:
    """SQL with `{s}` standing for the quoted schema, composed once per text."""

    def __init__(self, schema: str, **names: sql.Composable) -> None:
        self._names: dict[str, sql.Composable] = {"s": sql.Identifier(schema), **names}
        self._cache: dict[str, sql.Composed] = {}

    def __call__(self, text: str) -> sql.Composed:
        composed = self._cache.get(text)
        if composed is None:
            composed = self._cache[text] = sql.SQL(text).format(**self._names)
        return composed
