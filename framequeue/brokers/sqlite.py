"""A queue table in the embedded SQLite file. Contract: framequeue.brokers.base.Broker, and
framequeue.brokers.in_tx.InTxQueue: a job store on the same file writes rows and messages in one transaction."""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

from framequeue.brokers.base import Message, QueueStats, lanes_of
from framequeue.brokers.urls import parse_broker_url
from framequeue.db.sqlite import Database, database
from framequeue.errors import ServiceUnavailable
from framequeue.jobs import PRIORITIES, Priority

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    visible_at_s REAL NOT NULL,
    receipt TEXT,
    deliveries INTEGER NOT NULL DEFAULT 0,
    enqueued_at_s REAL NOT NULL,
    priority INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS queue_visible ON queue (visible_at_s, id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    deliveries INTEGER NOT NULL,
    dead_at_s REAL NOT NULL
);
"""

#: a queue table made before lanes gets the column (SQLite has no ADD COLUMN IF NOT EXISTS)
_ADD_PRIORITY = "ALTER TABLE queue ADD COLUMN priority INTEGER NOT NULL DEFAULT 1"

#: the next visible message of the receiving lanes ({lanes}: their ranks): the highest lane (Priority.rank,
#: 0 high), a low one (2) that waited :max_wait seconds ranking as normal (1), then the oldest
_NEXT = """SELECT id, job_id, deliveries FROM queue WHERE visible_at_s <= :now AND priority IN ({lanes})
           ORDER BY CASE WHEN priority = 2 AND enqueued_at_s <= :now - :max_wait THEN 1 ELSE priority END, id
           LIMIT 1"""

#: polling interval bounds while waiting for a message. SQLite has no notification, so an idle worker
#: polls; each poll is one indexed read without the write lock, and the cap bounds dispatch latency
#: (250 ms cost 79 ms p50 in bench/dispatch; 50 ms is about 20 cheap reads a second per idle worker)
POLL_MIN_S = 0.02
POLL_MAX_S = 0.05


class SQLiteBroker:
    #: an unacked message comes back when its visibility runs out
    redelivery: ClassVar[Literal["visibility", "connection"]] = "visibility"

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        opts = parse_broker_url(url)
        self._db: Database = database(opts.server_url)
        #: InTxQueue: the file, as the job store on it names it
        self.database = str(self._db.path)
        self._max_deliveries = opts.max_deliveries
        self._low_max_wait_s = opts.low_max_wait_s
        #: the receiving lanes' ranks, as SQL (integers only: no injection)
        self._lane_ranks = ", ".join(str(lane.rank) for lane in opts.lanes)
        self._next_sql = _NEXT.format(lanes=self._lane_ranks)
        self._clock = clock
        self._closed = threading.Event()
        try:
            self._db.conn().executescript(SCHEMA)
            with self._db.write() as conn:
                columns = {row[1] for row in conn.execute("PRAGMA table_info(queue)")}
                if "priority" not in columns:
                    conn.execute(_ADD_PRIORITY)
        except sqlite3.Error as exc:
            raise ServiceUnavailable(f"cannot prepare the SQLite queue: {exc}") from exc

    def publish(self, job_id: str, priority: Priority = Priority.NORMAL) -> None:
        self.publish_many([job_id], [priority])

    def publish_many(self, job_ids: Sequence[str], priorities: Sequence[Priority] | None = None) -> None:
        """One transaction for all of them."""
        with self._db.write() as conn:
            self.publish_in(conn, job_ids, priorities)

    def publish_in(self, conn: Any, job_ids: Sequence[str], priorities: Sequence[Priority] | None = None) -> None:
        lanes = lanes_of(job_ids, priorities)
        now_s = self._clock()
        conn.executemany(
            "INSERT INTO queue (job_id, visible_at_s, enqueued_at_s, priority) VALUES (?, ?, ?, ?)",
            [(job_id, now_s, now_s, lane.rank) for job_id, lane in zip(job_ids, lanes, strict=True)],
        )

    def receive(self, visibility_s: float, wait_s: float) -> Message | None:
        deadline = time.monotonic() + wait_s
        pause_s = POLL_MIN_S
        while not self._closed.is_set():
            message = self._take(visibility_s)
            if message is not None:
                return message
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                return None
            self._closed.wait(min(pause_s, left_s))
            pause_s = min(POLL_MAX_S, pause_s * 2)
        return None

    def _take(self, visibility_s: float) -> Message | None:
        now_s = self._clock()
        # a cheap read first: an idle worker polling must not take the write lock each time
        look = f"SELECT 1 FROM queue WHERE visible_at_s <= ? AND priority IN ({self._lane_ranks}) LIMIT 1"
        if self._db.conn().execute(look, (now_s,)).fetchone() is None:
            return None
        receipt = secrets.token_hex(8)
        with self._db.write() as conn:
            while True:
                row = conn.execute(self._next_sql, {"now": now_s, "max_wait": self._low_max_wait_s}).fetchone()
                if row is None:
                    return None
                if row["deliveries"] < self._max_deliveries:
                    break
                conn.execute(
                    "INSERT INTO dead_letters (id, job_id, deliveries, dead_at_s) VALUES (?, ?, ?, ?)",
                    (row["id"], row["job_id"], row["deliveries"], now_s),
                )
                conn.execute("DELETE FROM queue WHERE id = ?", (row["id"],))
            conn.execute(
                "UPDATE queue SET visible_at_s = ?, receipt = ?, deliveries = deliveries + 1 WHERE id = ?",
                (now_s + visibility_s, receipt, row["id"]),
            )
        return Message(receipt=f"{row['id']}:{receipt}", job_id=row["job_id"], deliveries=row["deliveries"] + 1)

    def ack(self, message: Message) -> None:
        with self._db.write() as conn:
            self.ack_in(conn, message)

    def ack_in(self, conn: Any, message: Message) -> None:
        msg_id, receipt = _split(message)
        conn.execute("DELETE FROM queue WHERE id = ? AND receipt = ?", (msg_id, receipt))

    def nack(self, message: Message, delay_s: float = 0.0) -> None:
        msg_id, receipt = _split(message)
        with self._db.write() as conn:
            conn.execute(
                "UPDATE queue SET visible_at_s = ?, receipt = NULL WHERE id = ? AND receipt = ?",
                (self._clock() + delay_s, msg_id, receipt),
            )

    def extend(self, message: Message, visibility_s: float) -> None:
        msg_id, receipt = _split(message)
        with self._db.write() as conn:
            conn.execute(
                "UPDATE queue SET visible_at_s = ? WHERE id = ? AND receipt = ?",
                (self._clock() + visibility_s, msg_id, receipt),
            )

    def stats(self) -> QueueStats:
        now_s = self._clock()
        conn = self._db.conn()
        row = conn.execute(
            """SELECT COALESCE(SUM(visible_at_s <= :now), 0) AS ready,
                      COALESCE(SUM(visible_at_s > :now AND receipt IS NOT NULL), 0) AS in_flight,
                      COALESCE(SUM(visible_at_s > :now AND receipt IS NULL), 0) AS delayed,
                      MIN(CASE WHEN visible_at_s <= :now THEN enqueued_at_s END) AS oldest
               FROM queue""",
            {"now": now_s},
        ).fetchone()
        dead = conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
        by_rank = dict(conn.execute(
            "SELECT priority, COUNT(*) FROM queue WHERE visible_at_s <= ? OR receipt IS NULL GROUP BY priority",
            (now_s,),
        ).fetchall())
        oldest = row["oldest"]
        return QueueStats(
            ready=int(row["ready"]), in_flight=int(row["in_flight"]), delayed=int(row["delayed"]), dead=int(dead),
            oldest_ready_age_s=0.0 if oldest is None else max(0.0, now_s - oldest),
            waiting_by_priority={lane: int(by_rank.get(lane.rank, 0)) for lane in PRIORITIES},
        )

    def take_dead(self, limit: int) -> list[str]:
        with self._db.write() as conn:
            rows = conn.execute("SELECT id, job_id FROM dead_letters ORDER BY id LIMIT ?", (limit,)).fetchall()
            conn.executemany("DELETE FROM dead_letters WHERE id = ?", [(r["id"],) for r in rows])
        return [r["job_id"] for r in rows]

    def close(self) -> None:
        self._closed.set()


def _split(message: Message) -> tuple[int, str]:
    msg_id, _, receipt = message.receipt.partition(":")
    return int(msg_id), receipt
