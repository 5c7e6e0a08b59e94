"""The job store's rules in SQL, written once for SQLite and PostgreSQL: one module per concern, the
engine's spelling and transactions behind framequeue.jobstore.sql.dialect."""

from __future__ import annotations

from framequeue.jobstore.sql.api_keys import SqlApiKeys
from framequeue.jobstore.sql.deliveries import SqlDeliveries
from framequeue.jobstore.sql.endpoints import SqlEndpoints
from framequeue.jobstore.sql.jobs import SqlJobs
from framequeue.jobstore.sql.leases import SqlLeases
from framequeue.jobstore.sql.model_endpoints import SqlModelEndpoints
from framequeue.jobstore.sql.outbox import SqlOutbox
from framequeue.jobstore.sql.retention import SqlRetention
from framequeue.jobstore.sql.segments import SqlSegments


class SqlJobStore(SqlJobs, SqlLeases, SqlOutbox, SqlDeliveries, SqlEndpoints, SqlModelEndpoints, SqlApiKeys,
                  SqlRetention, SqlSegments):
    """framequeue.jobstore.JobStore on an Engine; a backend only builds the engine and its schema."""

    def ping(self) -> None:
        self._engine.ping()

    def close(self) -> None:
        self._engine.close()


__all__ = ["SqlJobStore"]
