"""A queue table in PostgreSQL. Contract: framequeue.brokers.base.Broker, and
framequeue.brokers.in_tx.InTxQueue: a job store on the same database writes rows and messages in one
transaction (its NOTIFY, too, is delivered at that commit).

`postgresql://user@host/db?queue=NAME&max_deliveries=N&schema=SCHEMA`: messages of queue NAME live in
`SCHEMA.queue_NAME` (schema default "framequeue", shared with the job store), dead letters in
`SCHEMA.dead_NAME`; both are created at open under the schema's DDL lock.

`receive` takes the oldest visible message with `SELECT … FOR UPDATE SKIP LOCKED LIMIT 1` and makes it
invisible until now + visibility_s under a new receipt, in one transaction, so competing consumers never
get the same delivery. An idle consumer does not poll: it LISTENs on the queue's channel (publish and nack
NOTIFY in their own transaction) and sleeps until a notification, until the next delayed or in-flight
message comes due, or at most WAKE_S (a missed notification costs that much, never a lost message).

All times come from the database's clock (`clock_timestamp()`), never the consumers': visibility deadlines
are compared across hosts. The pool and the one LISTEN connection per broker are sync psycopg
(framequeue.db.postgres says why).

A restart of the server is ridden out for up to framequeue.db.postgres.RECONNECT_S: a call is run
again on a new connection, even one whose COMMIT was cut off, since a repeat costs at most a duplicate
delivery (a publish, a receive whose message then waits out its visibility) or nothing (ack, nack, extend);
`take_dead` is the exception, as a repeat could drop dead letters a lost COMMIT had removed. A consumer
whose LISTEN connection died looks at the table every WAKE_S until it can LISTEN again.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import time
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import psycopg
from psycopg import sql

from framequeue.brokers.base import Message, QueueStats, lanes_of
from framequeue.brokers.urls import parse_broker_url
from framequeue.db.postgres import (
    RECONNECT_S,
    Conn,
    ReconnectingConnections,
    Statements,
    lock_schema,
    parse_pg_url,
)
from framequeue.errors import ServiceUnavailable
from framequeue.jobs import PRIORITIES, Priority

#: longest sleep of an idle consumer between looks at the table, in seconds (a lost NOTIFY costs this)
WAKE_S = 1.0
#: shortest sleep, so a message due "now" that another consumer holds does not spin the loop
MIN_PAUSE_S = 0.01
#: queue names longer than this are shortened (plus a hash) to fit PostgreSQL's 63-byte identifiers
_NAME_MAX = 48

_TABLES = """
CREATE TABLE IF NOT EXISTS {q} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id text NOT NULL,
    visible_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    receipt text,
    deliveries integer NOT NULL DEFAULT 0,
    enqueued_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS {q_visible} ON {q} (visible_at);
-- the lane (framequeue.jobs.Priority.rank: 0 high, 1 normal, 2 low); added to tables made before lanes
ALTER TABLE {q} ADD COLUMN IF NOT EXISTS priority smallint NOT NULL DEFAULT 1;
CREATE TABLE IF NOT EXISTS {d} (
    id bigint PRIMARY KEY,
    job_id text NOT NULL,
    deliveries integer NOT NULL,
    dead_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""


class PostgresBroker:
    #: an unacked message comes back when its visibility runs out
    redelivery: ClassVar[Literal["visibility", "connection"]] = "visibility"

    def __init__(self, url: str) -> None:
        opts = parse_broker_url(url)
        pg = parse_pg_url(opts.server_url)
        name = _table_name(opts.queue)
        self._max_deliveries = opts.max_deliveries
        self._low_max_wait_s = opts.low_max_wait_s
        #: the ranks of the lanes receive takes from
        self._lane_ranks = [lane.rank for lane in opts.lanes]
        #: InTxQueue: the database, as a job store on it names it (its conninfo, without the schema)
        self.database = pg.conninfo
        #: NOTIFY channels are per database, not per schema: the schema is part of the name
        self._channel = "fq_" + hashlib.blake2b(f"{pg.schema}.{opts.queue}".encode(), digest_size=8).hexdigest()
        self._sql = Statements(
            pg.schema,
            q=sql.Identifier(pg.schema, f"queue_{name}"),
            q_visible=sql.Identifier(f"queue_{name}_visible"),
            d=sql.Identifier(pg.schema, f"dead_{name}"),
        )
        self._pool = ReconnectingConnections(pg.conninfo, "the PostgreSQL queue", repeatable=True)
        self._closed = threading.Event()
        #: held by the one thread waiting on the LISTEN connection (a psycopg connection is one caller's)
        self._listen_lock = threading.Lock()
        self._listener: Conn | None = None

        def prepare(conn: Conn) -> None:
            lock_schema(conn, pg.schema)
            conn.execute(self._sql(_TABLES))

        try:
            self._pool.run(prepare)
        except psycopg.Error as exc:  # e.g. no right to create the schema
            self._pool.close()
            raise ServiceUnavailable(f"cannot prepare the PostgreSQL queue {opts.queue}: {exc}") from exc
        except BaseException:
            self._pool.close()
            raise
        self._pool.reconnect_s = RECONNECT_S

    def publish(self, job_id: str, priority: Priority = Priority.NORMAL) -> None:
        self.publish_many([job_id], [priority])

    def publish_many(self, job_ids: Sequence[str], priorities: Sequence[Priority] | None = None) -> None:
        """One INSERT and one NOTIFY in one transaction."""
        if job_ids:
            self._pool.run(lambda conn: self.publish_in(conn, job_ids, priorities))

    def publish_in(self, conn: Any, job_ids: Sequence[str], priorities: Sequence[Priority] | None = None) -> None:
        ranks = [lane.rank for lane in lanes_of(job_ids, priorities)]
        if not ranks:
            return
        conn.execute(
            self._sql("INSERT INTO {q} (job_id, priority) SELECT * FROM unnest(%s::text[], %s::smallint[])"),
            (list(job_ids), ranks),
        )
        conn.execute("SELECT pg_notify(%s, '')", (self._channel,))  # delivered at commit

    def receive(self, visibility_s: float, wait_s: float) -> Message | None:
        deadline = time.monotonic() + wait_s
        while not self._closed.is_set():
            # before looking, so a publish after the look still wakes the wait below; when the server went
            # away, the look below waits for it to come back (or says it is gone)
            with contextlib.suppress(ServiceUnavailable):
                self._listen()
            try:
                message, due_in_s = self._pool.run(lambda conn: self._take(conn, visibility_s))
            except ServiceUnavailable:
                if self._closed.is_set():  # closed by another thread meanwhile
                    return None
                raise
            if message is not None:
                return message
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                return None
            pause_s = min(left_s, WAKE_S, WAKE_S if due_in_s is None else due_in_s)
            self._wait(max(MIN_PAUSE_S, pause_s))
        return None

    def _take(self, conn: Conn, visibility_s: float) -> tuple[Message | None, float | None]:
        """The next visible message, now in flight; else the seconds until one may come due."""
        receipt = secrets.token_hex(8)
        while True:
            row = conn.execute(
                self._sql(
                    # the highest lane first, a low one that waited low_max_wait_s ranking as normal
                    """SELECT id, job_id, deliveries FROM {q}
                       WHERE visible_at <= clock_timestamp() AND priority = ANY(%s::smallint[])
                       ORDER BY CASE WHEN priority = 2
                                      AND enqueued_at <= clock_timestamp() - make_interval(secs => %s)
                                     THEN 1 ELSE priority END, id
                       LIMIT 1 FOR UPDATE SKIP LOCKED"""
                ),
                (self._lane_ranks, self._low_max_wait_s),
            ).fetchone()
            if row is None:
                due = conn.execute(
                    self._sql(
                        """SELECT EXTRACT(EPOCH FROM MIN(visible_at) - clock_timestamp())::float8 AS due_in_s
                           FROM {q} WHERE visible_at > clock_timestamp() AND priority = ANY(%s::smallint[])"""
                    ),
                    (self._lane_ranks,),
                ).fetchone()
                return None, None if due is None else due["due_in_s"]
            if row["deliveries"] < self._max_deliveries:
                break
            conn.execute(
                self._sql(
                    """WITH gone AS (DELETE FROM {q} WHERE id = %s RETURNING id, job_id, deliveries)
                       INSERT INTO {d} (id, job_id, deliveries) SELECT id, job_id, deliveries FROM gone"""
                ),
                (row["id"],),
            )
        conn.execute(
            self._sql(
                """UPDATE {q} SET visible_at = clock_timestamp() + make_interval(secs => %s), receipt = %s,
                   deliveries = deliveries + 1 WHERE id = %s"""
            ),
            (visibility_s, receipt, row["id"]),
        )
        return Message(f"{row['id']}:{receipt}", row["job_id"], row["deliveries"] + 1), None

    def _listen(self) -> None:
        if self._listener is not None and not self._listener.closed:
            return
        with self._listen_lock:
            if not self._closed.is_set() and (self._listener is None or self._listener.closed):
                conn = self._pool.connect(autocommit=True)
                try:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                except psycopg.OperationalError as exc:
                    conn.close()
                    raise ServiceUnavailable(f"the PostgreSQL queue is unavailable: {exc}") from exc
                self._listener = conn

    def _wait(self, timeout_s: float) -> None:
        """Sleep until a NOTIFY on this queue's channel, or timeout_s."""
        started = time.monotonic()
        if not self._listen_lock.acquire(timeout=timeout_s):
            return  # another thread of this broker is waiting on the connection
        try:
            conn = self._listener
            left_s = timeout_s - (time.monotonic() - started)
            if self._closed.is_set() or left_s <= 0:
                return
            if conn is None:  # no LISTEN connection (the server went away): a plain pause
                self._closed.wait(left_s)
                return
            try:
                for _ in conn.notifies(timeout=left_s, stop_after=1):
                    pass
            except psycopg.OperationalError:
                conn.close()  # the server went away: _listen connects again, the next look reports it
                self._listener = None
        finally:
            self._listen_lock.release()

    def ack(self, message: Message) -> None:
        self._pool.run(lambda conn: self.ack_in(conn, message))

    def ack_in(self, conn: Any, message: Message) -> None:
        msg_id, receipt = _split(message)
        conn.execute(self._sql("DELETE FROM {q} WHERE id = %s AND receipt = %s"), (msg_id, receipt))

    def nack(self, message: Message, delay_s: float = 0.0) -> None:
        msg_id, receipt = _split(message)

        def work(conn: Conn) -> None:
            back = conn.execute(
                self._sql(
                    """UPDATE {q} SET visible_at = clock_timestamp() + make_interval(secs => %s), receipt = NULL
                       WHERE id = %s AND receipt = %s"""
                ),
                (delay_s, msg_id, receipt),
            )
            if back.rowcount:  # idle consumers wake and, for a delay, sleep until it is due
                conn.execute("SELECT pg_notify(%s, '')", (self._channel,))

        self._pool.run(work)

    def extend(self, message: Message, visibility_s: float) -> None:
        msg_id, receipt = _split(message)
        self._pool.run(
            lambda conn: conn.execute(
                self._sql(
                    """UPDATE {q} SET visible_at = clock_timestamp() + make_interval(secs => %s)
                       WHERE id = %s AND receipt = %s"""
                ),
                (visibility_s, msg_id, receipt),
            )
        )

    def stats(self) -> QueueStats:
        def work(conn: Conn) -> QueueStats:
            row = conn.execute(
                self._sql(
                    """SELECT count(*) FILTER (WHERE visible_at <= t.now) AS ready,
                              count(*) FILTER (WHERE visible_at > t.now AND receipt IS NOT NULL) AS in_flight,
                              count(*) FILTER (WHERE visible_at > t.now AND receipt IS NULL) AS delayed,
                              COALESCE(EXTRACT(EPOCH FROM t.now - MIN(enqueued_at) FILTER (
                                  WHERE visible_at <= t.now))::float8, 0) AS oldest_ready_age_s,
                              (SELECT count(*) FROM {d}) AS dead
                       FROM (SELECT clock_timestamp() AS now) AS t LEFT JOIN {q} ON true
                       GROUP BY t.now"""
                )
            ).fetchone()
            assert row is not None
            by_rank = {
                r["priority"]: r["n"] for r in conn.execute(
                    self._sql(
                        """SELECT priority, count(*) AS n FROM {q}
                           WHERE visible_at <= clock_timestamp() OR receipt IS NULL GROUP BY priority"""
                    )
                ).fetchall()
            }
            return QueueStats(
                ready=row["ready"], in_flight=row["in_flight"], delayed=row["delayed"], dead=row["dead"],
                oldest_ready_age_s=max(0.0, row["oldest_ready_age_s"]),
                waiting_by_priority={lane: int(by_rank.get(lane.rank, 0)) for lane in PRIORITIES},
            )

        return self._pool.run(work)

    def take_dead(self, limit: int) -> list[str]:
        def work(conn: Conn) -> list[str]:
            rows = conn.execute(
                self._sql(
                    """DELETE FROM {d} WHERE id IN (SELECT id FROM {d} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
                       RETURNING id, job_id"""
                ),
                (limit,),
            ).fetchall()
            return [r["job_id"] for r in sorted(rows, key=lambda r: r["id"])]

        return self._pool.run(work, repeatable=False)

    def close(self) -> None:
        self._closed.set()
        # a waiting receive holds the lock for at most WAKE_S, then sees _closed
        if self._listen_lock.acquire(timeout=2 * WAKE_S):
            try:
                if self._listener is not None:
                    self._listener.close()
                    self._listener = None
            finally:
                self._listen_lock.release()
        self._pool.close()


def _table_name(queue: str) -> str:
    """The queue name, or a prefix of it plus a hash when `queue_NAME_visible` would pass 63 bytes."""
    if len(queue) <= _NAME_MAX:
        return queue
    digest = hashlib.blake2b(queue.encode(), digest_size=6).hexdigest()
    return f"{queue[:_NAME_MAX - 13]}_{digest}"


def _split(message: Message) -> tuple[int, str]:
    msg_id, _, receipt = message.receipt.partition(":")
    return int(msg_id), receipt
