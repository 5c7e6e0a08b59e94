"""A worker's writes in the in-memory job store, each fenced by the lease token its claim handed out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from framequeue.jobs import (
    Job,
    JobError,
    JobProgress,
    JobStatus,
    Outcome,
    RunTotals,
    attempt_begun,
    attempt_ended,
    check_transition,
    claim_verdict,
)
from framequeue.jobstore.memory import transitions
from framequeue.jobstore.memory.state import JobEntry, MemoryBase
from framequeue.notify.events import progress_event_prefix, progress_row
from framequeue.tenants.fairshare import CLOCK_KEY, next_turn, turn_of


class MemoryLeases(MemoryBase):
    def claim(self, job_id: str, owner: str, lease_s: float, now_s: float) -> Job | None:
        with self._state.lock:
            found = self._claimable(job_id, now_s)
            return None if found is None else _take(found, owner, lease_s, now_s)

    def claim_fair(
        self, job_id: str, owner: str, lease_s: float, now_s: float, weights: Mapping[str, float]
    ) -> Job | None:
        state = self._state
        with state.lock:
            found = self._claimable(job_id, now_s)
            if found is None:
                return None
            lane = found.job.priority.value
            oldest: dict[str, JobEntry] = {}  # per waiting tenant of the lane
            for entry in state.jobs.values():
                job = entry.job
                if job.status is JobStatus.QUEUED and entry.published_at_s is not None and job.priority.value == lane:
                    first = oldest.get(job.tenant)
                    if first is None or (job.created_at_s, entry.seq) < (first.job.created_at_s, first.seq):
                        oldest[job.tenant] = entry
            tags = {t: state.fair_share.get((lane, t)) for t in oldest}
            tags.setdefault(found.job.tenant, None)  # its message may have come before mark_published
            clock = state.fair_share.get((lane, CLOCK_KEY), 0.0)
            turn = next_turn(tags, clock, weights, found.job.tenant)
            chosen = found
            if turn.tenant != found.job.tenant:
                other = self._claimable(oldest[turn.tenant].job.id, now_s)
                if other is None:  # just ended past its TTL: the job in hand runs
                    turn = turn_of(found.job.tenant, tags, clock, weights, charge=True)
                else:
                    chosen = other
            if turn.charge:
                state.fair_share[(lane, CLOCK_KEY)] = max(clock, turn.start)
                state.fair_share[(lane, turn.tenant)] = turn.finish
            return _take(chosen, owner, lease_s, now_s)

    def _claimable(self, job_id: str, now_s: float) -> JobEntry | None:
        """The entry, when claim_verdict lets a worker take it now; a job past its TTL or out of attempts is
        ended on the way. The caller holds the lock."""
        found = self._state.jobs.get(job_id)
        if found is None:
            return None
        verdict = claim_verdict(found.job, now_s)
        if verdict.action == "end":
            assert verdict.status is not None
            transitions.end(
                self._state, self._render, found, verdict.status, now_s, verdict.error, outcome=Outcome.LEASE_LOST
            )
        return found if verdict.action == "claim" else None

    def renew(self, job_id: str, token: int, lease_s: float, now_s: float) -> bool:
        with self._state.lock:
            found = transitions.fenced(self._state, job_id, token)
            job = found.job
            deadline_s = max(job.lease_deadline_s or 0.0, now_s + lease_s)
            found.job = replace(job, lease_deadline_s=deadline_s, updated_at_s=now_s)
            return job.cancel_requested

    def report_progress(
        self, job_id: str, token: int, progress: JobProgress, now_s: float, *, event: bool = False
    ) -> bool:
        state = self._state
        with state.lock:
            found = transitions.fenced(state, job_id, token)
            found.job = job = replace(found.job, progress=progress, updated_at_s=now_s)
            if event:
                prefix = progress_event_prefix(job_id)
                count = sum(r.job_id == job_id and r.id.startswith(prefix) for r in state.outbox.values())
                notice = progress_row(job, count + 1, self._render)
                if notice is not None:
                    transitions.write_row(state, job, notice, now_s)
            return job.cancel_requested

    def finish(
        self,
        job_id: str,
        token: int,
        status: JobStatus,
        now_s: float,
        *,
        error: JobError | None = None,
        outputs: dict[str, str] | None = None,
        progress: JobProgress | None = None,
        events: Sequence[Mapping[str, Any]] | None = None,
        totals: RunTotals | None = None,
    ) -> Job:
        with self._state.lock:
            found = transitions.fenced(self._state, job_id, token)
            if progress is not None:
                found.job = replace(found.job, progress=replace(
                    found.job.progress, frames_done=progress.frames_done, frames_total=progress.frames_total,
                    fps=progress.fps,
                ))
            if totals is not None:
                found.job = replace(found.job, totals=totals)
            return transitions.end(self._state, self._render, found, status, now_s, error, outputs, events=events)

    def release(
        self, job_id: str, token: int, now_s: float, *, count_attempt: bool, error: JobError | None = None
    ) -> Job:
        with self._state.lock:
            found = transitions.fenced(self._state, job_id, token)
            job = found.job
            check_transition(job.status, JobStatus.QUEUED)
            outcome = Outcome.FAILED if count_attempt else Outcome.HANDED_BACK
            found.job = replace(
                job, status=JobStatus.QUEUED, lease_owner=None, lease_deadline_s=None, updated_at_s=now_s,
                attempts=job.attempts - (0 if count_attempt else 1),
                attempt_history=attempt_ended(job.attempt_history, outcome, now_s, error),
            )
            found.published_at_s = None
            return found.job


def _take(found: JobEntry, owner: str, lease_s: float, now_s: float) -> Job:
    """Claim an entry found claimable under the lock: running, attempts + 1, a new fencing token."""
    job = found.job
    found.job = replace(
        job, status=JobStatus.RUNNING, attempts=job.attempts + 1, lease_token=job.lease_token + 1,
        lease_owner=owner, lease_deadline_s=now_s + lease_s,
        started_at_s=now_s if job.started_at_s is None else job.started_at_s, updated_at_s=now_s,
        progress=replace(job.progress, frames_done=0, fps=0.0, eta_s=None),
        attempt_history=attempt_begun(job, owner, now_s),
    )
    return found.job
