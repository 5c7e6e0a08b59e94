"""The outbox of the in-memory job store as the dispatcher works it (framequeue.notify.outbox.OutboxStore)."""

from __future__ import annotations

from framequeue.jobstore.memory.state import MemoryBase
from framequeue.notify.outbox import ENDPOINT_DISABLED, DisabledWebhook, OutboxEvent

#: longest last_error kept, in characters
_ERROR_CHARS = 500


class MemoryOutbox(MemoryBase):
    def due_events(self, now_s: float, limit: int) -> list[OutboxEvent]:
        with self._state.lock:
            due = [
                r for r in self._state.outbox.values()
                if r.delivered_at_s is None and not r.dead and r.next_attempt_at_s <= now_s
            ]
            return [r.event() for r in sorted(due, key=lambda r: r.next_attempt_at_s)[:limit]]

    def mark_delivered(self, event_id: str, now_s: float) -> None:
        with self._state.lock:
            row = self._state.outbox.get(event_id)
            if row is not None:
                row.delivered_at_s, row.attempts = now_s, row.attempts + 1

    def mark_retry(self, event_id: str, attempts: int, next_attempt_at_s: float, error: str) -> None:
        with self._state.lock:
            row = self._state.outbox.get(event_id)
            if row is not None:
                row.attempts, row.next_attempt_at_s, row.last_error = attempts, next_attempt_at_s, error[:_ERROR_CHARS]

    def mark_dead(self, event_id: str, attempts: int, error: str) -> None:
        with self._state.lock:
            row = self._state.outbox.get(event_id)
            if row is not None:
                row.dead, row.attempts, row.last_error = True, attempts, error[:_ERROR_CHARS]

    def disable_endpoint(self, event_id: str, attempts: int, error: str, now_s: float) -> None:
        state = self._state
        with state.lock:
            row = state.outbox.get(event_id)
            if row is None:
                return
            row.dead, row.attempts, row.last_error = True, attempts, error[:_ERROR_CHARS]
            job = state.jobs.get(row.job_id)
            if job is None:
                return
            tenant = job.job.tenant
            state.disabled.setdefault((tenant, row.url), DisabledWebhook(tenant, row.url, now_s, event_id))
            for other in state.outbox.values():
                owner = state.jobs.get(other.job_id)
                if (other.url == row.url and other.delivered_at_s is None and not other.dead
                        and owner is not None and owner.job.tenant == tenant):
                    other.dead, other.last_error = True, ENDPOINT_DISABLED
