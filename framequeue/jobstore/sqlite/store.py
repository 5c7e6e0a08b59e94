"""The job store on SQLite (embedded deployment): the shared SQL rules (framequeue.jobstore.sql) on one
SQLite file, which the queue may share (framequeue.db.sqlite). Every write is a BEGIN IMMEDIATE
transaction, so rows need no lock of their own; reads run outside a transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from framequeue.db.sqlite import Database, database
from framequeue.errors import ServiceUnavailable
from framequeue.jobstore.sql import SqlJobStore
from framequeue.jobstore.sql.dialect import Dialect, Row, Tx
from framequeue.jobstore.sqlite.schema import prepare
from framequeue.notify.events import PayloadRenderer

T = TypeVar("T")

DIALECT_TOKENS = {
    "s": "main",
    "greatest": "MAX",
    "for_update": "",
    "skip_locked": "",
    "any": "IN (SELECT value FROM json_each(%s))",
    "insert_order": "rowid",
    "seq_column": "seq, ",
    "seq_value": "(SELECT COALESCE(MAX(seq), 0) + 1 FROM main.jobs), ",
}


def sqlite_dialect() -> Dialect:
    return Dialect(
        tokens=DIALECT_TOKENS, placeholder="?", encode_json=json.dumps, decode_json=json.loads, array=json.dumps,
        row=_as_dict,
    )


def _as_dict(row: sqlite3.Row) -> Row:
    return dict(zip(row.keys(), row, strict=True))  # six times as fast as dict(row)


class SQLiteEngine:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.dialect = sqlite_dialect()

    def write(self, work: Callable[[Tx], T], *, repeatable: bool = False) -> T:
        with self._db.write() as conn:
            return work(Tx(conn, self.dialect))

    def read(self, work: Callable[[Tx], T], *, repeatable: bool = False) -> T:
        return work(Tx(self._db.conn(), self.dialect))

    def ping(self) -> None:
        try:
            self._db.conn().execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise ServiceUnavailable(f"the job store does not answer: {exc}") from exc

    def close(self) -> None:
        self._db.close()


class SQLiteJobStore(SqlJobStore):
    def __init__(self, url: str, render: PayloadRenderer) -> None:
        db = database(url)
        try:
            prepare(db)
        except sqlite3.Error as exc:
            raise ServiceUnavailable(f"cannot prepare the job store: {exc}") from exc
        super().__init__(SQLiteEngine(db), render)
        #: TxJobStore: the file, as a queue on it names it
        self.database = str(db.path)
