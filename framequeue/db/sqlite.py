"""One SQLite file shared by the job store and the queue of the embedded deployment.

WAL with synchronous=FULL (a 202 is a promise), a busy timeout, and BEGIN IMMEDIATE for every write
transaction so that two workers can never both read-then-claim the same row. One connection per thread.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from framequeue.errors import InvalidParams, ServiceUnavailable

BUSY_TIMEOUT_MS = 30_000


def sqlite_path(url: str) -> Path:
    """sqlite:///relative/fq.db or sqlite:////absolute/fq.db (SQLAlchemy's convention) -> Path."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise InvalidParams(f"not an SQLite URL: {urlsplit(url).scheme}://…")
    path = url[len(prefix):].split("?", 1)[0]
    if not path:
        raise InvalidParams("an SQLite URL needs a file path: sqlite:///path/to/fq.db")
    return Path(path)


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
                )
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            except sqlite3.Error as exc:
                raise ServiceUnavailable(f"cannot open the SQLite database {self.path}: {exc}") from exc
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A BEGIN IMMEDIATE transaction: the write lock is taken before anything is read."""
        conn = self.conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise ServiceUnavailable(f"the SQLite database is busy: {exc}") from exc
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()


_shared: dict[Path, Database] = {}
_shared_lock = threading.Lock()


def database(url: str) -> Database:
    """The process's Database for this URL (job store and queue share it when the URLs match)."""
    path = sqlite_path(url).resolve()
    with _shared_lock:
        db = _shared.get(path)
        if db is None:
            db = _shared[path] = Database(path)
        return db
