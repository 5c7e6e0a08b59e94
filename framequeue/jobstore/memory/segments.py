"""A long video's split in the in-memory job store (the same rules as framequeue.jobstore.sql.segments):
the parent's segment jobs created and the parent parked in one step under the lock, fenced by the parent's
lease token; and the segments read back. What their ends do to the parent is in cascade.py."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace

from framequeue.errors import InvalidParams, InvalidTransition
from framequeue.jobs import CANCELLED_BY_REQUEST, Job, JobProgress, JobStatus, Outcome, attempt_ended
from framequeue.jobstore.memory import transitions
from framequeue.jobstore.memory.state import JobEntry, MemoryBase


class MemorySegments(MemoryBase):
    def split(self, parent_id: str, token: int, segments: Sequence[Job], now_s: float) -> Job:
        state = self._state
        with state.lock:
            found = transitions.fenced(state, parent_id, token)
            parent = found.job
            if parent.segments_total is not None or parent.parent_id is not None or not segments:
                raise InvalidTransition(f"job {parent_id} cannot be split (split already, a segment, or no segments)")
            if parent.cancel_requested:
                return transitions.end(state, self._render, found, JobStatus.CANCELLED, now_s, CANCELLED_BY_REQUEST)
            taken = [s.id for s in segments if s.id in state.jobs]
            if taken:
                raise InvalidParams(f"a job {taken[0]} exists")
            for index, segment in enumerate(segments):
                assert segment.parent_id == parent_id and segment.segment_index == index
                fresh = replace(copy.deepcopy(segment), status=JobStatus.QUEUED, progress=JobProgress())
                state.jobs[segment.id] = JobEntry(fresh, next(state.seq), None)
            found.job = replace(
                parent, segments_total=len(segments), segments_done=0, lease_owner=None, lease_deadline_s=None,
                lease_token=parent.lease_token + 1,  # the splitting worker's heartbeat is fenced off
                attempts=parent.attempts - 1, updated_at_s=now_s,
                attempt_history=attempt_ended(parent.attempt_history, Outcome.SPLIT, now_s),
            )
            return found.job

    def segments(self, parent_id: str) -> list[Job]:
        with self._state.lock:
            return sorted((e.job for e in self._state.jobs.values() if e.job.parent_id == parent_id),
                          key=lambda j: j.segment_index or 0)
