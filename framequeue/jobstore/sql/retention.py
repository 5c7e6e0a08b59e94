"""Retention in a SQL job store: which ended jobs' files are due for deletion, the sweeper's claim of one
expiry (a conditional UPDATE: of several sweepers only one reports it), and the purge of old records.
The rule is framequeue.jobs.outputs_due / record_due, here as WHERE clauses."""

from __future__ import annotations

from framequeue.jobs import Job
from framequeue.jobstore.sql import transitions
from framequeue.jobstore.sql.base import SqlBase
from framequeue.jobstore.sql.dialect import Tx

_ENDED = "status IN ('succeeded', 'failed', 'cancelled', 'expired')"


class SqlRetention(SqlBase):
    def outputs_due(self, now_s: float, limit: int, finished_before_s: float | None = None) -> list[Job]:
        text = f"""SELECT * FROM {{s}}.jobs WHERE {_ENDED} AND outputs_expired_at_s IS NULL
                   AND finished_at_s IS NOT NULL
                   AND ((retention_s IS NOT NULL AND finished_at_s + retention_s <= %s) OR finished_at_s < %s)
                   ORDER BY finished_at_s, seq LIMIT %s"""
        before_s = -1.0 if finished_before_s is None else finished_before_s
        return self._engine.read(
            lambda tx: [transitions.job(tx, r) for r in tx.all(text, (now_s, before_s, limit))]
        )

    def mark_outputs_expired(self, job_id: str, now_s: float) -> bool:
        text = f"""UPDATE {{s}}.jobs SET outputs_expired_at_s = %s, outputs = %s
                   WHERE id = %s AND outputs_expired_at_s IS NULL AND {_ENDED}"""
        return self._engine.write(lambda tx: tx.run(text, (now_s, tx.dialect.encode_json({}), job_id)) > 0)

    def input_in_use(self, input_key: str, job_id: str) -> bool:
        def work(tx: Tx) -> bool:
            row = tx.one(
                """SELECT id FROM {s}.jobs WHERE input_key = %s AND id <> %s AND outputs_expired_at_s IS NULL
                   LIMIT 1""",
                (input_key, job_id),
            )
            return row is not None

        return self._engine.read(work)

    def records_due(self, finished_before_s: float, limit: int) -> list[Job]:
        text = f"""SELECT * FROM {{s}}.jobs WHERE {_ENDED} AND finished_at_s IS NOT NULL AND finished_at_s <= %s
                   ORDER BY finished_at_s, seq LIMIT %s"""
        return self._engine.read(
            lambda tx: [transitions.job(tx, r) for r in tx.all(text, (finished_before_s, limit))]
        )

    def purge_record(self, job_id: str, finished_before_s: float) -> bool:
        def work(tx: Tx) -> bool:
            gone = tx.run(
                f"DELETE FROM {{s}}.jobs WHERE id = %s AND {_ENDED} AND finished_at_s <= %s",
                (job_id, finished_before_s),
            )
            if gone:
                tx.run("DELETE FROM {s}.outbox WHERE job_id = %s", (job_id,))
            return gone > 0

        return self._engine.write(work)
