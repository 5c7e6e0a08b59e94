"""Retention in the in-memory job store: the same rule as the SQL stores (framequeue.jobs.outputs_due and
record_due), under the store's lock."""

from __future__ import annotations

from dataclasses import replace

from framequeue.jobs import Job, outputs_due
from framequeue.jobstore.memory.state import MemoryBase


class MemoryRetention(MemoryBase):
    def outputs_due(self, now_s: float, limit: int, finished_before_s: float | None = None) -> list[Job]:
        with self._state.lock:
            due = [
                e for e in self._state.jobs.values()
                if outputs_due(e.job, now_s, finished_before_s)
            ]
            due.sort(key=lambda e: (e.job.finished_at_s or 0.0, e.seq))
            return [e.job for e in due[:limit]]

    def mark_outputs_expired(self, job_id: str, now_s: float) -> bool:
        with self._state.lock:
            found = self._state.jobs.get(job_id)
            if found is None or not found.job.status.terminal or found.job.outputs_expired_at_s is not None:
                return False
            found.job = replace(found.job, outputs_expired_at_s=now_s, outputs={})
            return True

    def input_in_use(self, input_key: str, job_id: str) -> bool:
        with self._state.lock:
            return any(
                e.job.input_key == input_key and e.job.id != job_id and e.job.outputs_expired_at_s is None
                for e in self._state.jobs.values()
            )

    def records_due(self, finished_before_s: float, limit: int) -> list[Job]:
        with self._state.lock:
            due = [e for e in self._state.jobs.values() if _ended_before(e.job, finished_before_s)]
            due.sort(key=lambda e: (e.job.finished_at_s or 0.0, e.seq))
            return [e.job for e in due[:limit]]

    def purge_record(self, job_id: str, finished_before_s: float) -> bool:
        state = self._state
        with state.lock:
            found = state.jobs.get(job_id)
            if found is None or not _ended_before(found.job, finished_before_s):
                return False
            del state.jobs[job_id]
            if found.job.idempotency_key is not None:
                state.keys.pop(found.job.idempotency_key, None)
            for event_id in [k for k, row in state.outbox.items() if row.job_id == job_id]:
                del state.outbox[event_id]
            return True


def _ended_before(job: Job, finished_before_s: float) -> bool:
    return job.status.terminal and job.finished_at_s is not None and job.finished_at_s <= finished_before_s
