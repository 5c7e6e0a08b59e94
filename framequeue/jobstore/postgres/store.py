"""The job store on PostgreSQL: the shared SQL rules (framequeue.jobstore.sql) in one schema.

`postgresql://user@host:5432/db?schema=NAME`: tables live in schema NAME (default "framequeue"), created
and migrated at open (framequeue.jobstore.postgres.schema). Sync psycopg with a small pool; why not the
async client is said in framequeue.db.postgres.

Every write is one transaction at READ COMMITTED. A claim or terminal write reads the row with
`SELECT … FOR UPDATE`, so two racing claimers queue on the row lock and the second sees the first's claim;
heartbeats and progress are one `UPDATE … WHERE lease_token = … AND status = 'running'`. A terminal state
and its outbox rows commit together. Times are the callers' `now_s` (the protocol passes them), as in the
SQLite store, so the hosts' clocks must agree (NTP); the queue uses the database's clock instead.

A restart of the server (or a failover) is ridden out for up to RECONNECT_S (framequeue.db.postgres): a
call is run again unless its COMMIT was cut off (its outcome is unknown), or the call is repeatable. A
worker whose progress report or commit falls into the restart goes on with its job. Opening fails at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from framequeue.db.postgres import RECONNECT_S, Conn, ReconnectingConnections, parse_pg_url
from framequeue.errors import ServiceUnavailable
from framequeue.jobstore.postgres.schema import migrate
from framequeue.jobstore.sql import SqlJobStore
from framequeue.jobstore.sql.dialect import Dialect, Row, Tx
from framequeue.notify.events import PayloadRenderer

T = TypeVar("T")


def postgres_dialect(schema: str) -> Dialect:
    """`schema` is a checked identifier (parse_pg_url), so quoting it is enough."""
    return Dialect(
        tokens={
            "s": f'"{schema}"',
            "greatest": "GREATEST",
            "for_update": " FOR UPDATE",
            "skip_locked": " FOR UPDATE SKIP LOCKED",
            "any": "= ANY(%s)",
            "insert_order": "id",
            "seq_column": "",
            "seq_value": "",
        },
        placeholder="%s",
        encode_json=Jsonb,
        decode_json=_decoded,  # psycopg decodes jsonb columns itself
        array=list,
        row=_as_row,
    )


def _decoded(value: Any) -> Any:
    return value


def _as_row(row: Row) -> Row:
    return row


class PostgresEngine:
    def __init__(self, pool: ReconnectingConnections, dialect: Dialect) -> None:
        self._pool = pool
        self.dialect = dialect

    def write(self, work: Callable[[Tx], T], *, repeatable: bool = False) -> T:
        return self._pool.run(lambda conn: work(Tx(conn, self.dialect)), repeatable=repeatable)

    read = write  # a read is a transaction too: the pool commits it

    def ping(self) -> None:
        self._pool.run(lambda conn: conn.execute("SELECT 1").fetchone())

    def close(self) -> None:
        self._pool.close()


class PostgresJobStore(SqlJobStore):
    def __init__(self, url: str, render: PayloadRenderer) -> None:
        opts = parse_pg_url(url)
        self.schema = opts.schema
        pool = ReconnectingConnections(opts.conninfo, "the job store")

        def prepare(conn: Conn) -> None:
            migrate(conn, opts.schema)

        try:
            pool.run(prepare)
        except psycopg.Error as exc:  # e.g. no right to create the schema
            pool.close()
            raise ServiceUnavailable(f"cannot prepare the job store in schema {opts.schema}: {exc}") from exc
        except BaseException:
            pool.close()
            raise
        pool.reconnect_s = RECONNECT_S
        super().__init__(PostgresEngine(pool, postgres_dialect(opts.schema)), render)
        #: TxJobStore: the database, as a queue on it names it (its conninfo, without the schema)
        self.database = opts.conninfo
