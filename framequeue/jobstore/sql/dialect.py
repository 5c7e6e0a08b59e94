"""What the SQL job stores' shared statements leave to the engine, and how they run there.

The statements (framequeue.jobstore.sql) are written once, with `%s` parameters, `{s}.` before every
table, and a few tokens a Dialect spells for its engine: `{greatest}`, `{for_update}` (a row lock
PostgreSQL needs and SQLite's BEGIN IMMEDIATE makes moot), `{skip_locked}`, `{any}` (membership in one
list parameter), `{insert_order}`, and `{seq_column}`/`{seq_value}` (SQLite numbers jobs itself,
PostgreSQL by an identity column). An Engine runs a unit of work in one transaction on one connection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
#: a row by column name; JSON columns still as the driver returns them (see Dialect.decode_json)
Row = dict[str, Any]

TOKENS = frozenset({"s", "greatest", "for_update", "skip_locked", "any", "insert_order", "seq_column", "seq_value"})


class Dialect:
    """One engine's spelling of the shared statements, each compiled once and cached."""

    def __init__(
        self,
        *,
        tokens: Mapping[str, str],
        placeholder: str,
        encode_json: Callable[[Any], Any],
        decode_json: Callable[[Any], Any],
        array: Callable[[list[str]], Any],
        row: Callable[[Any], Row],
    ) -> None:
        assert set(tokens) == TOKENS, set(tokens) ^ TOKENS
        self._tokens = dict(tokens)
        self._placeholder = placeholder
        #: a Python value for a JSON column, and back
        self.encode_json = encode_json
        self.decode_json = decode_json
        #: a list of strings as the one parameter of `{any}`
        self.array = array
        #: a driver's row as a Row
        self.row = row
        self._compiled: dict[str, str] = {}

    def compile(self, text: str) -> str:
        query = self._compiled.get(text)
        if query is None:
            query = text.format(**self._tokens)
            if self._placeholder != "%s":
                query = query.replace("%s", self._placeholder)
            self._compiled[text] = query
        return query


class Tx:
    """One transaction on one connection (sqlite3 or psycopg: both have `execute` returning a cursor)."""

    __slots__ = ("_conn", "dialect")

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._conn = conn
        self.dialect = dialect

    def one(self, text: str, params: Sequence[Any] = ()) -> Row | None:
        row = self._conn.execute(self.dialect.compile(text), params).fetchone()
        return None if row is None else self.dialect.row(row)

    def all(self, text: str, params: Sequence[Any] = ()) -> list[Row]:
        to_row = self.dialect.row
        return [to_row(r) for r in self._conn.execute(self.dialect.compile(text), params).fetchall()]

    @property
    def connection(self) -> Any:
        """The driver's connection, inside this transaction (a queue on the same database writes with it)."""
        return self._conn

    def run(self, text: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; how many rows it changed."""
        count: int = self._conn.execute(self.dialect.compile(text), params).rowcount
        return count


class Engine(Protocol):
    """Runs units of work on one database. `repeatable`: running the work twice does no harm, so a call
    whose COMMIT was cut off may be run again (engines that never lose a COMMIT ignore it)."""

    dialect: Dialect

    def write(self, work: Callable[[Tx], T], *, repeatable: bool = False) -> T:
        """`work` in one write transaction, committed when it returns."""
        ...

    def read(self, work: Callable[[Tx], T], *, repeatable: bool = False) -> T:
        """`work` reading only (no write lock taken where the engine has one)."""
        ...

    def ping(self) -> None:
        """Raise ServiceUnavailable when the database cannot be reached."""
        ...

    def close(self) -> None: ...
