"""What a job's end does to the jobs of its split, under the store's lock (the same rules as
framequeue.jobstore.sql.cascade): a segment's success counts in its parent and the last one queues the
parent again for its stitch; a segment that ends otherwise fails its parent; a parent that ends otherwise
stops its segments. transitions.end calls `after_end` for every terminal write."""

from __future__ import annotations

from dataclasses import replace

from framequeue.jobs import CANCELLED_WITH_PARENT, Job, JobStatus, segment_failed_error, stitch_due, stitch_expiry_s
from framequeue.jobstore.memory import transitions
from framequeue.jobstore.memory.state import State
from framequeue.notify.events import PayloadRenderer


def after_end(state: State, render: PayloadRenderer, ended: Job, now_s: float) -> None:
    if ended.parent_id is not None:
        _segment_ended(state, render, ended, now_s)
    if ended.segments_total is not None and ended.status is not JobStatus.SUCCEEDED:
        _stop_segments(state, render, ended, now_s)


def _segment_ended(state: State, render: PayloadRenderer, segment: Job, now_s: float) -> None:
    assert segment.parent_id is not None
    found = state.jobs.get(segment.parent_id)
    if found is None or found.job.status.terminal:
        return
    parent = found.job
    if segment.status is not JobStatus.SUCCEEDED:
        transitions.end(state, render, found, JobStatus.FAILED, now_s, segment_failed_error(segment))
        return
    done = parent.segments_done + 1
    if stitch_due(parent, done):
        found.job = replace(parent, segments_done=done, status=JobStatus.QUEUED,
                            expires_at_s=stitch_expiry_s(parent, now_s), updated_at_s=now_s)
        found.published_at_s = None
    else:
        found.job = replace(parent, segments_done=done, updated_at_s=now_s)


def _stop_segments(state: State, render: PayloadRenderer, parent: Job, now_s: float) -> None:
    segments = sorted((e for e in state.jobs.values() if e.job.parent_id == parent.id),
                      key=lambda e: e.job.segment_index or 0)
    for found in segments:
        if found.job.status is JobStatus.QUEUED:
            transitions.end(state, render, found, JobStatus.CANCELLED, now_s, CANCELLED_WITH_PARENT)
        elif found.job.status is JobStatus.RUNNING:
            found.job = replace(found.job, cancel_requested=True, updated_at_s=now_s)
