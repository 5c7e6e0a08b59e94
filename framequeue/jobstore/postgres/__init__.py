"""The job store on PostgreSQL: `postgresql://user@host:5432/db?schema=NAME`."""

from typing import TYPE_CHECKING

from framequeue.jobstore.postgres.store import PostgresJobStore

if TYPE_CHECKING:
    from framequeue.jobstore.ports import JobStore

    _conforms: type[JobStore] = PostgresJobStore

__all__ = ["PostgresJobStore"]
