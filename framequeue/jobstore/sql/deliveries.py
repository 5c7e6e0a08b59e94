"""Deliveries per job, replay, and webhook URLs disabled by a 410, in a SQL job store."""

from __future__ import annotations

from framequeue.errors import DeliveryNotFound
from framequeue.jobstore.sql.base import SqlBase
from framequeue.jobstore.sql.dialect import Row
from framequeue.notify.outbox import Delivery, DisabledWebhook


class SqlDeliveries(SqlBase):
    def list_deliveries(self, job_id: str) -> list[Delivery]:
        rows = self._engine.read(
            lambda tx: tx.all(
                "SELECT * FROM {s}.outbox WHERE job_id = %s ORDER BY COALESCE(created_at_s, 0), {insert_order}",
                (job_id,),
            ),
            repeatable=True,
        )
        return [_delivery(r) for r in rows]

    def get_delivery(self, event_id: str) -> Delivery:
        row = self._engine.read(
            lambda tx: tx.one("SELECT * FROM {s}.outbox WHERE id = %s", (event_id,)), repeatable=True
        )
        if row is None:
            raise DeliveryNotFound("no such delivery")
        return _delivery(row)

    def replay_delivery(self, event_id: str, now_s: float) -> Delivery:
        row = self._engine.write(
            lambda tx: tx.one(
                """UPDATE {s}.outbox SET dead = FALSE, delivered_at_s = NULL, next_attempt_at_s = %s
                   WHERE id = %s RETURNING *""",
                (now_s, event_id),
            ),
            repeatable=True,
        )
        if row is None:
            raise DeliveryNotFound("no such delivery")
        return _delivery(row)

    def webhook_disabled(self, tenant: str, url: str) -> DisabledWebhook | None:
        row = self._engine.read(
            lambda tx: tx.one("SELECT * FROM {s}.disabled_webhooks WHERE tenant = %s AND url = %s", (tenant, url)),
            repeatable=True,
        )
        return None if row is None else DisabledWebhook(**row)

    def list_disabled_webhooks(self, tenant: str | None = None) -> list[DisabledWebhook]:
        where, args = ("WHERE tenant = %s", (tenant,)) if tenant is not None else ("", ())
        text = f"SELECT * FROM {{s}}.disabled_webhooks {where} ORDER BY disabled_at_s, url"
        rows = self._engine.read(lambda tx: tx.all(text, args), repeatable=True)
        return [DisabledWebhook(**r) for r in rows]

    def enable_webhook(self, tenant: str, url: str) -> bool:
        deleted = self._engine.write(
            lambda tx: tx.run("DELETE FROM {s}.disabled_webhooks WHERE tenant = %s AND url = %s", (tenant, url)),
            repeatable=True,
        )
        return deleted > 0


def _delivery(row: Row) -> Delivery:
    return Delivery(
        id=row["id"], job_id=row["job_id"], url=row["url"], payload=bytes(row["payload"]), attempts=row["attempts"],
        next_attempt_at_s=row["next_attempt_at_s"], delivered_at_s=row["delivered_at_s"], dead=bool(row["dead"]),
        last_error=row["last_error"],
    )
