"""The stitch of a split parent (framequeue.worker.split): its segments' outputs joined into one output set,
identical in form to an unsplit run's, committed by one fenced `finish` (one webhook). The annotated MP4s
are concatenated by packet remux (no re-encode; each segment's starts at 0 and the join makes the timestamps
continuous); the per-frame JSON records (already numbered as the whole video's) follow one another under the
first segment's head; the contact sheet is drawn from the whole joined video. The road pipeline's per-frame
JSON, events, summary and timeline are joined by framequeue.pipelines.road.join (track ids mapped across each
boundary)."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
import numpy.typing as npt

from framequeue.config import crashpoint
from framequeue.errors import CorruptMedia, LeaseLost
from framequeue.jobs import (
    Job,
    JobProgress,
    JobStatus,
    RunTotals,
    attempt_output_key,
    output_prefix,
    segments_prefix,
)
from framequeue.media import remux
from framequeue.media.frames import Frame
from framequeue.media.sheet import ContactSheet, sheet_indexes
from framequeue.pipelines.join import concat_frames_json, merge_events, read_tail
from framequeue.pipelines.road.join import RoadPart, join_road
from framequeue.pipelines.road.pipeline import OVERLAP_OUTPUT
from framequeue.runtime import Runtime
from framequeue.worker.attempt import Outcome, deliver_answer
from framequeue.worker.inputs import COPY_CHUNK_BYTES

log = logging.getLogger("framequeue.worker")

#: output name -> file name, as the detect pipeline writes them (framequeue.pipelines.detect.OUTPUTS)
VIDEO, FRAMES, SHEET = "video", "detections", "contact_sheet"
#: the road pipeline's (framequeue.pipelines.road.pipeline.OUTPUTS)
ROAD, TIMELINE = "road", "timeline"
#: each pipeline's answer, delivered to the job's output location
PRIMARY: Mapping[str, str] = {"detect": FRAMES, "road": ROAD}


class Stitcher:
    def __init__(self, rt: Runtime, *, clock: Callable[[], float]) -> None:
        self.rt, self.settings = rt, rt.settings
        self._clock = clock

    def stitch(self, job: Job, scratch: Path, lost: threading.Event) -> Outcome:
        crashpoint(self.settings, "before_stitch")
        started = time.monotonic()
        segments = self.rt.store.segments(job.id)
        if len(segments) != job.segments_total or any(s.status is not JobStatus.SUCCEEDED for s in segments):
            raise LeaseLost(f"job {job.id}: claimed for its stitch before its segments all succeeded")
        out = scratch / "out"
        out.mkdir(parents=True, exist_ok=True)
        names = segments[0].outputs
        videos = [self._download(s, VIDEO, scratch) for s in segments]
        files: dict[str, Path] = {}
        files[VIDEO] = out / Path(names[VIDEO]).name
        frames_total = remux.concat(videos, files[VIDEO])
        boundaries_s = [s.params["segment"]["start_s"] for s in segments[1:]]
        events_total: int | None = None
        if job.pipeline == "road":
            files[ROAD], files[TIMELINE] = out / Path(names[ROAD]).name, out / Path(names[TIMELINE]).name
            parts = []
            for s in segments:
                road = self._download(s, ROAD, scratch)
                # every event from road.json (a job's record keeps only the first MAX_EVENTS)
                events_of = read_tail(road).get("events", [])
                parts.append(RoadPart(road, self._download(s, OVERLAP_OUTPUT, scratch), events_of,
                                      s.params["segment"]["start_s"]))
            events = join_road(parts, files[ROAD], files[TIMELINE], frames_total)
            events_total = len(events)
        else:
            files[FRAMES] = out / Path(names[FRAMES]).name
            join_frames([self._download(s, FRAMES, scratch) for s in segments], files[FRAMES], frames_total)
            # an event that crosses a boundary is one event (detect has none)
            events = merge_events([s.events for s in segments], boundaries_s)
        files[SHEET] = out / Path(names[SHEET]).name
        draw_sheet(files[VIDEO], files[SHEET], frames_total)
        if lost.is_set():
            raise LeaseLost(f"job {job.id}: lease expired while stitching")
        outputs: dict[str, str] = {}
        for name, path in files.items():
            key = attempt_output_key(job.id, job.lease_token, path.name)
            with open(path, "rb") as src, self.rt.objects.open_write(key) as dst:
                shutil.copyfileobj(src, dst, COPY_CHUNK_BYTES)
            outputs[name] = key
        if job.output_uri:
            deliver_answer(self.rt, job, files[PRIMARY.get(job.pipeline, FRAMES)])
        totals = joined_totals(segments)
        if events_total is not None:
            totals = dataclasses.replace(totals, events_total=events_total)
        self.rt.store.finish(
            job.id, job.lease_token, JobStatus.SUCCEEDED, self._clock(), outputs=outputs,
            progress=JobProgress(frames_total, frames_total, 0.0, 0.0), events=events, totals=totals,
        )
        self._drop_leftovers(job, keep=set(outputs.values()))
        took_s = time.monotonic() - started
        return Outcome(job.id, "succeeded", f"stitched {len(segments)} segments, {frames_total} frames, {took_s:.2f} s")

    def _download(self, segment: Job, name: str, scratch: Path) -> Path:
        key = segment.outputs[name]
        path = scratch / f"{segment.segment_index:04d}-{Path(key).name}"
        with self.rt.objects.open_read(key) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, COPY_CHUNK_BYTES)
        return path

    def _drop_leftovers(self, job: Job, keep: set[str]) -> None:
        """The segments' inputs, and outputs of earlier stitch attempts (a worker that died after uploading)."""
        for prefix in (segments_prefix(job.id), output_prefix(job.id)):
            for key in self.rt.objects.list(prefix):
                if key not in keep:
                    self.rt.objects.delete(key)


def joined_totals(segments: Sequence[Job]) -> RunTotals:
    """The whole video's totals: the segments' sums (None where any segment has none)."""
    def total(values: list[Any]) -> Any:
        return None if any(v is None for v in values) else sum(values)

    return RunTotals(
        total([s.totals.video_s for s in segments]),
        total([s.totals.events_total for s in segments]),
        total([s.totals.detections_total for s in segments]),
    )


def join_frames(parts: Sequence[Path], dst: Path, frames_total: int) -> None:
    """One per-frame JSON from the segments' (JsonStream files whose records are already numbered as the
    whole video's: no offsets, no track ids to map for detect), streamed: the first head, every record in
    order, the first segment's video summary with the whole frame count and duration."""
    video = dict(read_tail(parts[0]).get("video", {}))
    video["frames"] = frames_total
    fps = video.get("fps")
    durations = [read_tail(p).get("video", {}).get("duration_s") for p in parts]
    video["duration_s"] = frames_total / fps if fps else (None if None in durations else sum(durations))
    zeros = [0] * len(parts)
    concat_frames_json(parts, dst, zeros, [0.0] * len(parts), [None] * len(parts), tail={"video": video})


def draw_sheet(video: Path, dst: Path, frames_total: int) -> None:
    """The contact sheet of the whole joined video, with the frames an unsplit run picks: each found by a
    seek to the keyframe before it and a decode of at most one GOP (not of the whole video)."""
    sheet = ContactSheet(frames_total)
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        if stream.time_base is None or not stream.average_rate:
            raise CorruptMedia(f"{video.name}: the joined video has no time base or frame rate")
        time_base, rate = Fraction(stream.time_base), Fraction(stream.average_rate)
        first = next(container.decode(stream))
        first_pts = first.pts or 0
        for target in sheet_indexes(frames_total, sheet.cells):
            container.seek(first_pts + round(target / rate / time_base), stream=stream, backward=True)
            for av_frame in container.decode(stream):
                pts = (av_frame.pts or 0) - first_pts
                index = round(pts * time_base * rate)
                if index >= target:
                    image = cast(npt.NDArray[np.uint8], av_frame.to_ndarray(format="bgr24"))
                    sheet.offer(Frame(target, pts, time_base, image), image)
                    break
    sheet.save(dst)
