"""PostgreSQL plumbing shared by the job store and the queue: URL options, a small connection pool that
translates psycopg's errors and rides out a server restart, the schema's DDL lock and numbered migrations.

Sync psycopg, not AsyncConnection behind framequeue.brokers.aio.LoopThread: the protocols are synchronous and are
called from many threads, and psycopg's sync connection already blocks without holding the GIL. A loop
thread would add a hop per call, serialise every caller onto one thread, and turn a call timeout into a
cancelled coroutine in the middle of a transaction, with the connection in an unknown state. LISTEN/NOTIFY,
the one thing an event loop is usually wanted for, works synchronously with `Connection.notifies(timeout=)`.

A restart of the server (or a failover) is ridden out by ReconnectingConnections: a call that could not
reach it, or lost its connection before its transaction committed, is run again on a new connection for up
to RECONNECT_S, since the server rolled back whatever it did; one whose COMMIT was cut off only when the
caller says a repeat does no harm (its outcome is unknown).

Migrations: `<schema>.schema_migrations` records the versions applied. `migrate` runs at open in one
transaction under a transaction-scoped advisory lock keyed on the schema, so processes starting together
apply each step once; the steps are idempotent too (IF NOT EXISTS), and only ever added at the end.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
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
log = logging.getLogger(__name__)

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
#: how long a call keeps trying to reach a server that went away (a restart, a failover) before it fails
RECONNECT_S = 15.0
#: the first pause between tries, doubled up to MAX_RECONNECT_PAUSE_S
RECONNECT_PAUSE_S = 0.1
MAX_RECONNECT_PAUSE_S = 1.0
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


def migrate(conn: Conn, schema: str, migrations: tuple[Migration, ...]) -> list[int]:
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
