"""The outbox of a SQL job store as the dispatcher works it (framequeue.notify.outbox.OutboxStore)."""

from __future__ import annotations

from framequeue.jobstore.sql.base import SqlBase
from framequeue.jobstore.sql.dialect import Tx
from framequeue.notify.outbox import ENDPOINT_DISABLED, OutboxEvent

#: longest last_error kept, in characters
_ERROR_CHARS = 500


class SqlOutbox(SqlBase):
    def due_events(self, now_s: float, limit: int) -> list[OutboxEvent]:
        rows = self._engine.read(
            lambda tx: tx.all(
                """SELECT * FROM {s}.outbox WHERE delivered_at_s IS NULL AND dead = FALSE
                   AND next_attempt_at_s <= %s ORDER BY next_attempt_at_s LIMIT %s""",
                (now_s, limit),
            )
        )
        return [
            OutboxEvent(
                id=r["id"], job_id=r["job_id"], url=r["url"], secret=r["secret"], payload=bytes(r["payload"]),
                attempts=r["attempts"], next_attempt_at_s=r["next_attempt_at_s"],
            )
            for r in rows
        ]

    def mark_delivered(self, event_id: str, now_s: float) -> None:
        self._engine.write(
            lambda tx: tx.run(
                "UPDATE {s}.outbox SET delivered_at_s = %s, attempts = attempts + 1 WHERE id = %s", (now_s, event_id)
            )
        )

    def mark_retry(self, event_id: str, attempts: int, next_attempt_at_s: float, error: str) -> None:
        self._engine.write(
            lambda tx: tx.run(
                "UPDATE {s}.outbox SET attempts = %s, next_attempt_at_s = %s, last_error = %s WHERE id = %s",
                (attempts, next_attempt_at_s, error[:_ERROR_CHARS], event_id),
            )
        )

    def mark_dead(self, event_id: str, attempts: int, error: str) -> None:
        self._engine.write(
            lambda tx: tx.run(
                "UPDATE {s}.outbox SET dead = TRUE, attempts = %s, last_error = %s WHERE id = %s",
                (attempts, error[:_ERROR_CHARS], event_id),
            )
        )

    def disable_endpoint(self, event_id: str, attempts: int, error: str, now_s: float) -> None:
        def work(tx: Tx) -> None:
            row = tx.one(
                "SELECT o.url, j.tenant FROM {s}.outbox o JOIN {s}.jobs j ON j.id = o.job_id WHERE o.id = %s",
                (event_id,),
            )
            tx.run(
                "UPDATE {s}.outbox SET dead = TRUE, attempts = %s, last_error = %s WHERE id = %s",
                (attempts, error[:_ERROR_CHARS], event_id),
            )
            if row is None:
                return
            tx.run(
                """INSERT INTO {s}.disabled_webhooks (tenant, url, disabled_at_s, event_id)
                   VALUES (%s, %s, %s, %s) ON CONFLICT (tenant, url) DO NOTHING""",
                (row["tenant"], row["url"], now_s, event_id),
            )
            tx.run(
                """UPDATE {s}.outbox SET dead = TRUE, last_error = %s WHERE url = %s AND delivered_at_s IS NULL
                   AND dead = FALSE AND job_id IN (SELECT id FROM {s}.jobs WHERE tenant = %s)""",
                (ENDPOINT_DISABLED, row["url"], row["tenant"]),
            )

        self._engine.write(work)
