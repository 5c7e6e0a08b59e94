"""The job store on SQLite: `sqlite:///path/to/fq.db`."""

from typing import TYPE_CHECKING

from framequeue.jobstore.sqlite.store import SQLiteJobStore

if TYPE_CHECKING:
    from framequeue.jobstore.ports import JobStore

    _conforms: type[JobStore] = SQLiteJobStore

__all__ = ["SQLiteJobStore"]
