"""Deliveries per job, replay, and webhook URLs disabled by a 410, in the in-memory job store."""

from __future__ import annotations

from framequeue.errors import DeliveryNotFound
from framequeue.jobstore.memory.state import MemoryBase
from framequeue.notify.outbox import Delivery, DisabledWebhook


class MemoryDeliveries(MemoryBase):
    def list_deliveries(self, job_id: str) -> list[Delivery]:
        with self._state.lock:
            rows = [r for r in self._state.outbox.values() if r.job_id == job_id]
            return [r.delivery() for r in sorted(rows, key=lambda r: r.created_at_s)]  # stable: insertion order

    def get_delivery(self, event_id: str) -> Delivery:
        with self._state.lock:
            row = self._state.outbox.get(event_id)
            if row is None:
                raise DeliveryNotFound("no such delivery")
            return row.delivery()

    def replay_delivery(self, event_id: str, now_s: float) -> Delivery:
        with self._state.lock:
            row = self._state.outbox.get(event_id)
            if row is None:
                raise DeliveryNotFound("no such delivery")
            row.dead, row.delivered_at_s, row.next_attempt_at_s = False, None, now_s
            return row.delivery()

    def webhook_disabled(self, tenant: str, url: str) -> DisabledWebhook | None:
        with self._state.lock:
            return self._state.disabled.get((tenant, url))

    def list_disabled_webhooks(self, tenant: str | None = None) -> list[DisabledWebhook]:
        with self._state.lock:
            rows = [d for d in self._state.disabled.values() if tenant is None or d.tenant == tenant]
            return sorted(rows, key=lambda d: (d.disabled_at_s, d.url))

    def enable_webhook(self, tenant: str, url: str) -> bool:
        with self._state.lock:
            return self._state.disabled.pop((tenant, url), None) is not None
