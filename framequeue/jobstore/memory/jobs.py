"""Jobs in the in-memory job store: submit (idempotent by key and request hash), read, cancel, the
reaper's pass, and which jobs the broker holds a message for. The worker's fenced writes are in leases.py."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace

from framequeue.errors import IdempotencyConflict, InvalidParams
from framequeue.jobs import (
    CANCELLED_BY_REQUEST,
    DEAD_LETTERED,
    Job,
    JobProgress,
    JobStatus,
    LaneBacklog,
    Outcome,
    Priority,
    attempt_ended,
    expired_error,
    lease_expired_verdict,
)
from framequeue.jobstore.memory import transitions
from framequeue.jobstore.memory.state import JobEntry, MemoryBase


class MemoryJobs(MemoryBase):
    def create(self, job: Job, request_hash: str | None = None) -> tuple[Job, bool]:
        made = self.create_many([(job, request_hash)])[0]
        if isinstance(made, IdempotencyConflict):
            raise made
        return made

    def create_many(self, jobs: Sequence[tuple[Job, str | None]]) -> list[tuple[Job, bool] | IdempotencyConflict]:
        state = self._state
        with state.lock:
            # checked before anything is written: all the new rows go in, or none
            ids = [job.id for job, _ in jobs]
            taken = [i for i in ids if i in state.jobs]
            if taken or len(set(ids)) != len(ids):
                raise InvalidParams(f"a job {(taken or ids)[0]} exists")
            out: list[tuple[Job, bool] | IdempotencyConflict] = []
            for job, request_hash in jobs:
                key = job.idempotency_key
                if key is not None and key in state.keys:
                    existing = state.jobs[state.keys[key]]
                    if existing.request_hash != request_hash:
                        out.append(IdempotencyConflict(
                            "this Idempotency-Key was used with a different request body; use a new key for a "
                            "new job"
                        ))
                    else:
                        out.append((existing.job, False))
                    continue
                fresh = replace(
                    copy.deepcopy(job), status=JobStatus.QUEUED, attempts=0, started_at_s=None, finished_at_s=None,
                    lease_owner=None, lease_token=0, lease_deadline_s=None, cancel_requested=False,
                    progress=JobProgress(), error=None, outputs={}, outputs_expired_at_s=None,
                    attempt_history=(), events=[], events_truncated=False,
                )
                state.jobs[job.id] = JobEntry(fresh, next(state.seq), request_hash)
                if key is not None:
                    state.keys[key] = job.id
                out.append((fresh, True))
            return out

    def get(self, job_id: str) -> Job:
        with self._state.lock:
            return transitions.entry(self._state, job_id).job

    def list_jobs(
        self, status: JobStatus | None = None, limit: int = 50, after: str | None = None, tenant: str | None = None
    ) -> list[Job]:
        with self._state.lock:
            entries = sorted(self._state.jobs.values(), key=lambda e: e.seq, reverse=True)
            if after is not None:
                last = self._state.jobs.get(after)
                entries = [] if last is None else [e for e in entries if e.seq < last.seq]
            return [
                e.job for e in entries
                if (status is None or e.job.status is status) and (tenant is None or e.job.tenant == tenant)
                and e.job.parent_id is None  # segment jobs show in their parent's record
            ][:limit]

    def count_queued(self, tenant: str) -> int:
        with self._state.lock:
            return sum(
                e.job.tenant == tenant and e.job.status is JobStatus.QUEUED and e.job.parent_id is None
                for e in self._state.jobs.values()
            )

    def lane_backlog(self) -> list[LaneBacklog]:
        groups: dict[tuple[Priority, str], LaneBacklog] = {}
        with self._state.lock:
            for e in self._state.jobs.values():
                job = e.job
                if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
                    continue
                key = (job.priority, job.tenant)
                g = groups.get(key) or LaneBacklog(job.priority, job.tenant, 0, 0)
                if job.status is JobStatus.QUEUED:
                    oldest = job.created_at_s if g.oldest_queued_at_s is None else min(g.oldest_queued_at_s,
                                                                                        job.created_at_s)
                    groups[key] = replace(g, queued=g.queued + 1, oldest_queued_at_s=oldest)
                else:
                    groups[key] = replace(g, running=g.running + 1)
        return list(groups.values())

    def cancel(self, job_id: str, now_s: float) -> Job:
        with self._state.lock:
            found = transitions.entry(self._state, job_id)
            job = found.job
            if job.status is JobStatus.QUEUED or job.parked:  # parked: a split parent no worker holds
                return transitions.end(self._state, self._render, found, JobStatus.CANCELLED, now_s,
                                       CANCELLED_BY_REQUEST)
            if job.status is JobStatus.RUNNING:
                found.job = replace(job, cancel_requested=True, updated_at_s=now_s)
                return found.job
            return job  # already terminal: cancelling is a no-op, the answer says how it ended

    def reap(self, now_s: float) -> list[str]:
        state = self._state
        with state.lock:
            by_seq = sorted(state.jobs.values(), key=lambda e: e.seq)
            for found in by_seq:
                if found.job.status is JobStatus.QUEUED and found.job.expires_at_s <= now_s:
                    transitions.end(state, self._render, found, JobStatus.EXPIRED, now_s, expired_error(found.job))
            requeued: list[str] = []
            for found in by_seq:
                job = found.job
                if job.status is not JobStatus.RUNNING or job.lease_deadline_s is None or job.lease_deadline_s > now_s:
                    continue
                verdict = lease_expired_verdict(job)
                if verdict.action == "end":
                    assert verdict.status is not None
                    transitions.end(
                        state, self._render, found, verdict.status, now_s, verdict.error, outcome=Outcome.LEASE_LOST
                    )
                else:
                    found.job = replace(
                        job, status=JobStatus.QUEUED, lease_owner=None, lease_deadline_s=None, updated_at_s=now_s,
                        attempt_history=attempt_ended(job.attempt_history, Outcome.LEASE_LOST, now_s),
                    )
                    found.published_at_s = None
                    requeued.append(job.id)
            return requeued

    def discard_unpublished(self, job_id: str) -> bool:
        state = self._state
        with state.lock:
            found = state.jobs.get(job_id)
            if found is None or found.job.status is not JobStatus.QUEUED or found.published_at_s is not None:
                return False
            if found.job.attempts != 0:
                return False
            del state.jobs[job_id]
            if found.job.idempotency_key is not None:
                state.keys.pop(found.job.idempotency_key, None)
            return True

    def mark_published(self, job_id: str, now_s: float) -> None:
        with self._state.lock:
            found = self._state.jobs.get(job_id)
            if found is not None:
                found.published_at_s = now_s

    def mark_published_many(self, job_ids: Sequence[str], now_s: float) -> None:
        with self._state.lock:
            for job_id in job_ids:
                self.mark_published(job_id, now_s)

    def unpublished(self, older_than_s: float, limit: int, stale_before_s: float | None = None) -> list[str]:
        stale_s = -1.0 if stale_before_s is None else stale_before_s
        with self._state.lock:
            return [
                e.job.id for e in sorted(self._state.jobs.values(), key=lambda e: e.seq)
                if e.job.status is JobStatus.QUEUED and (
                    (e.published_at_s is None and e.job.created_at_s < older_than_s)
                    or (e.published_at_s is not None and e.published_at_s < stale_s)
                )
            ][:limit]

    def fail_dead_lettered(self, job_id: str, now_s: float) -> bool:
        with self._state.lock:
            found = self._state.jobs.get(job_id)
            if found is None or found.job.status is not JobStatus.QUEUED:
                return False
            transitions.end(self._state, self._render, found, JobStatus.FAILED, now_s, DEAD_LETTERED)
            return True
