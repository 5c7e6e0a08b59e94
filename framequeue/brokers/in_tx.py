"""An optional capability of a broker whose queue is a table in a SQL database (SQLite, PostgreSQL): write
to the queue inside a transaction someone else opened on the same database, so a job row and its message
commit together, and so do a job's terminal state and the ack of its message.

`database` names the database: a job store whose own `database` is equal runs its transactions there
(framequeue.jobstore.ports.TxJobStore), and hands its connection (a sqlite3 or psycopg connection, inside
its open transaction) to `publish_in` / `ack_in`. They only add statements: the caller commits or rolls
back. Their effect, once committed, is exactly `publish_many` / `ack`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from framequeue.brokers.base import Message
from framequeue.jobs import Priority


@runtime_checkable
class InTxQueue(Protocol):
    #: the database that holds the queue: an SQLite file's resolved path, a PostgreSQL conninfo
    database: str

    def publish_in(self, conn: Any, job_ids: Sequence[str], priorities: Sequence[Priority] | None = None) -> None:
        """publish_many's statements on `conn`, in its open transaction."""
        ...

    def ack_in(self, conn: Any, message: Message) -> None:
        """ack's statements on `conn`, in its open transaction."""
        ...


__all__ = ["InTxQueue"]
