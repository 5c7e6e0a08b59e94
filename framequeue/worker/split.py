"""A long video's two extra phases on the worker: the split (a parent's first claim: scan the keyframes,
cut the segments by packet remux, store each, then create the segment jobs and park the parent in one
fenced write) and, around a segment's own attempt, its parent's state (a segment of an ended parent stops
at once; the segment whose commit queued the parent for its stitch publishes it). The stitch is stitch.py.

Exactly-once comes from the job store (framequeue.jobstore.ports.SegmentStore): the split commits under the
parent's lease token or not at all (a worker that dies mid-split leaves objects under its own token, and the
reaper gives the parent to another), and the parent is queued for its stitch by the commit of its last
segment, whose publish the reaper's `unpublished` redoes when the worker died before it.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from framequeue.brokers.base import Message
from framequeue.config import Settings
from framequeue.errors import FrameQueueError
from framequeue.jobs import CANCELLED_WITH_PARENT, Job, JobStatus, segment_job, segments_prefix
from framequeue.media import keyframes, remux
from framequeue.runtime import Runtime
from framequeue.worker.attempt import Outcome
from framequeue.worker.heartbeat import Heartbeat
from framequeue.worker.inputs import COPY_CHUNK_BYTES, fetch_input
from framequeue.worker.stitch import Stitcher

log = logging.getLogger("framequeue.worker")

#: the pipelines whose segments the stitch knows how to join (an annotated MP4, per-frame JSON, a sheet)
SPLITTABLE = frozenset({"detect", "road"})
#: a segment's lead-in may run past split_lead_in_s by at most this share of the segment's own length
MAX_LEAD_IN_SHARE: Final = 0.25


def may_split(job: Job, settings: Settings) -> bool:
    """Could this claim be a split? A job not split yet, of a pipeline the stitch joins, whose params do not
    say `split: false`, and either say `split: true` or the deployment expects more than one worker. Whether
    the video is long enough is known only once it is scanned (should_split)."""
    if job.parent_id is not None or job.segments_total is not None or job.pipeline not in SPLITTABLE:
        return False
    wanted = job.params.get("split")
    return wanted is True or (wanted is None and settings.split_workers > 1)


def should_split(job: Job, duration_s: float, settings: Settings) -> bool:
    """`split: true` splits any video; else one longer than split_min_s."""
    return job.params.get("split") is True or duration_s > settings.split_min_s


def bounded_lead_in(plan: keyframes.SegmentPlan, lead_in_s: float) -> keyframes.SegmentPlan:
    """`plan`, or, when the keyframe its lead-in starts from lies further back than lead_in_s plus
    MAX_LEAD_IN_SHARE of the segment (keyframes far apart: a giant GOP), the segment decoded from its own
    start keyframe without a lead-in, rather than re-running most of the segment before it."""
    limit_s = lead_in_s + MAX_LEAD_IN_SHARE * (plan.end_s - plan.start_s)
    if plan.start_s - plan.lead_in_start_s <= limit_s + keyframes.EPS_S:
        return plan
    return dataclasses.replace(plan, lead_in_start_s=plan.start_s, lead_in_frames=0)


def segment_block(plan: keyframes.SegmentPlan) -> dict[str, Any]:
    """A segment job's params' `segment` block (framequeue.pipelines.base.SegmentSpan reads it)."""
    return {
        "index": plan.index, "start_s": plan.start_s, "end_s": plan.end_s, "first_frame": plan.first_frame,
        "frames": plan.frames, "lead_in_start_s": plan.lead_in_start_s, "lead_in_frames": plan.lead_in_frames,
    }


def drop_segments(rt: Runtime, parent_id: str) -> None:
    """Delete a parent's segment inputs (it ended: stitched, failed or cancelled)."""
    for key in rt.objects.list(segments_prefix(parent_id)):
        rt.objects.delete(key)


class SplitPhases:
    """The split and stitch of parents, and the parent bookkeeping around a segment's attempt."""

    def __init__(self, rt: Runtime, heartbeat: Heartbeat, *, clock: Callable[[], float]) -> None:
        self.rt, self.settings = rt, rt.settings
        self._heartbeat, self._clock = heartbeat, clock
        self._stitcher = Stitcher(rt, clock=clock)

    def run(self, job: Job, message: Message, scratch: Path) -> Outcome | None:
        """This claim's outcome when it was a split, a stitch or a segment whose parent ended; None when it
        is an ordinary attempt (the caller runs it), a video too short to split included."""
        if job.segments_total is not None:
            with self._heartbeat.tracking(job, message) as beat:
                return self._stitcher.stitch(job, scratch, beat.lost)
        if job.parent_id is not None:
            return self._stop_if_parent_ended(job)
        if not may_split(job, self.settings):
            return None
        with self._heartbeat.tracking(job, message):
            # the split commits under the claim's token or raises LeaseLost; it fences that token off
            return self._split(job, scratch)

    def after_attempt(self, job: Job, outcome: Outcome) -> None:
        """A segment that succeeded may have queued its parent for the stitch: publish it (a duplicate is
        turned away at its claim; a publish lost here the reaper makes)."""
        if job.parent_id is None or outcome.status in ("retry", "handed_back"):
            return
        parent = self.rt.store.get(job.parent_id)
        if parent.status.terminal:  # this segment's end failed it, or it was cancelled: no stitch will come
            drop_segments(self.rt, parent.id)
        elif parent.status is JobStatus.QUEUED:
            self.rt.service.publish(parent.id, parent.priority)
            log.info("job %s: all %s segments done; queued for its stitch", parent.id, parent.segments_total)

    def _stop_if_parent_ended(self, job: Job) -> Outcome | None:
        assert job.parent_id is not None
        if not self.rt.store.get(job.parent_id).status.terminal:
            return None
        self.rt.store.finish(job.id, job.lease_token, JobStatus.CANCELLED, self._clock(), error=CANCELLED_WITH_PARENT)
        drop_segments(self.rt, job.parent_id)
        return Outcome(job.id, "cancelled", f"its parent {job.parent_id} ended")

    def _split(self, job: Job, scratch: Path) -> Outcome | None:
        started = time.monotonic()
        scratch.mkdir(parents=True, exist_ok=True)
        # read in place from a local store; else the claim's copy, which the attempt reuses when it runs whole
        source = fetch_input(self.rt, job, scratch, in_place=True)
        return self._split_source(job, source, scratch, started)

    def _split_source(self, job: Job, source: Path, scratch: Path, started: float) -> Outcome | None:
        try:
            index = keyframes.scan(source)
        except FrameQueueError as exc:  # the ordinary attempt fails it with the pipeline's own error
            log.info("job %s: not split (%s); run whole", job.id, exc.message)
            return None
        if not should_split(job, index.duration_s, self.settings):
            return None
        segment_s = float(job.params.get("segment_s") or self.settings.segment_s)
        lead_in_s = self.settings.split_lead_in_s
        plans = [bounded_lead_in(p, lead_in_s) for p in keyframes.plan(index, segment_s, lead_in_s)]
        if len(plans) < 2:  # too few keyframes to cut anywhere: never mid-GOP, so run it whole
            log.info("job %s: %.0f s but no cut point; run whole", job.id, index.duration_s)
            return None
        try:
            keys = [self._cut(job, source, plan, scratch) for plan in plans]
        except FrameQueueError as exc:  # e.g. a codec MP4 cannot carry: the pieces cut so far go, it runs whole
            log.info("job %s: not split (%s); run whole", job.id, exc.message)
            drop_segments(self.rt, job.id)
            return None
        now_s = self._clock()
        segments = [
            segment_job(job, plan.index, uuid.uuid4().hex, key, segment_block(plan), now_s)
            for plan, key in zip(plans, keys, strict=True)
        ]
        self.rt.store.split(job.id, job.lease_token, segments, self._clock())
        for segment in segments:
            self.rt.service.publish(segment.id, segment.priority)
        took_s = time.monotonic() - started
        log.info("job %s: split into %d segments of about %.0f s in %.2f s", job.id, len(segments), segment_s, took_s)
        return Outcome(job.id, "split", f"{len(segments)} segments, {took_s:.2f} s")

    def _cut(self, job: Job, source: Path, plan: keyframes.SegmentPlan, scratch: Path) -> str:
        """Cut one segment (with its lead-in) and store it under this attempt's token; its key."""
        path = scratch / f"segment-{plan.index:04d}.mp4"
        remux.cut(source, path, plan.lead_in_start_s, plan.end_s)
        key = f"{segments_prefix(job.id)}attempt-{job.lease_token}/{plan.index:04d}.mp4"
        with open(path, "rb") as src, self.rt.objects.open_write(key) as dst:
            shutil.copyfileobj(src, dst, COPY_CHUNK_BYTES)
        path.unlink()
        return key
