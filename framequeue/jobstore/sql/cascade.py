"""What a job's end does to the jobs of its split (framequeue.jobs, "split jobs"), inside the transaction
that ends it: a segment's success counts in its parent, and the last one queues the parent again for its
stitch; a segment that ends otherwise fails its parent; a parent that ends otherwise stops its segments.
transitions.end calls `after_end` for every terminal write, whoever makes it (finish, the reaper, a claim's
verdict, cancel, a dead letter), so each rule holds on every path exactly once."""

from __future__ import annotations

from framequeue.jobs import (
    CANCELLED_WITH_PARENT,
    Job,
    JobStatus,
    segment_failed_error,
    stitch_due,
    stitch_expiry_s,
)
from framequeue.jobstore.sql import transitions
from framequeue.jobstore.sql.dialect import Tx
from framequeue.notify.events import PayloadRenderer


def after_end(tx: Tx, render: PayloadRenderer, ended: Job, now_s: float) -> None:
    if ended.parent_id is not None:
        _segment_ended(tx, render, ended, now_s)
    if ended.segments_total is not None and ended.status is not JobStatus.SUCCEEDED:
        _stop_segments(tx, render, ended, now_s)


def _segment_ended(tx: Tx, render: PayloadRenderer, segment: Job, now_s: float) -> None:
    assert segment.parent_id is not None
    row = transitions.locked(tx, segment.parent_id)  # two segments ending at once queue on this lock
    if row is None:
        return
    parent = transitions.job(tx, row)
    if parent.status.terminal:
        return
    if segment.status is not JobStatus.SUCCEEDED:
        transitions.end(tx, render, parent, JobStatus.FAILED, now_s, segment_failed_error(segment))
        return
    done = parent.segments_done + 1
    if stitch_due(parent, done):
        # the last one: the parent goes back to the queue for its stitch, published after the commit (or by
        # the reaper's `unpublished`, should the caller die first)
        tx.run(
            """UPDATE {s}.jobs SET segments_done = %s, status = 'queued', published_at_s = NULL,
               expires_at_s = %s, updated_at_s = %s WHERE id = %s""",
            (done, stitch_expiry_s(parent, now_s), now_s, parent.id),
        )
    else:
        tx.run("UPDATE {s}.jobs SET segments_done = %s, updated_at_s = %s WHERE id = %s", (done, now_s, parent.id))


def _stop_segments(tx: Tx, render: PayloadRenderer, parent: Job, now_s: float) -> None:
    """A queued segment ends cancelled now; a running one gets cancel_requested for its worker (or the
    reaper). A segment locked by a concurrent write is skipped: its worker sees the parent ended."""
    for row in tx.all(
        """SELECT * FROM {s}.jobs WHERE parent_id = %s AND status IN ('queued', 'running')
           ORDER BY segment_index{skip_locked}""",
        (parent.id,),
    ):
        segment = transitions.job(tx, row)
        if segment.status is JobStatus.QUEUED:
            transitions.end(tx, render, segment, JobStatus.CANCELLED, now_s, CANCELLED_WITH_PARENT)
        else:
            tx.run("UPDATE {s}.jobs SET cancel_requested = TRUE, updated_at_s = %s WHERE id = %s",
                   (now_s, segment.id))
