"""Where a video can be cut without decoding it, and where to cut it: the container's packets give each
frame's time and the keyframes; `plan` turns them into segments of about `segment_s` that start on keyframes.

Times are seconds from the video's first frame in presentation order (as `decode.decode_frames` counts
them), so a plan's times and frame indices are the unsplit run's own. A keyframe is a *cut point* only when
no packet after it in decode order shows before it (an open GOP's leading pictures would lose their
references): cutting there never splits a GOP.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final, NamedTuple

import av.error
import numpy as np
import numpy.typing as npt

from framequeue.errors import CorruptMedia, UnsupportedMedia
from framequeue.media.probe import STILL_FORMATS, open_container, sniff_container, video_stream

#: two times closer than this are the same instant, seconds (times are Fractions turned into floats)
EPS_S: Final = 1e-6
#: frame rate assumed when a stream declares none and has fewer than two frames
_FALLBACK_FPS: Final = Fraction(25)


class Packet(NamedTuple):
    """One demuxed video packet, in decode order; times in the stream's time base."""

    pts: int
    dts: int | None
    key: bool


@dataclass(frozen=True)
class VideoIndex:
    """A video's frame times and cut points, from its packets alone."""

    #: cut points (clean keyframes), seconds from the first frame, rising; the first frame's 0.0 included
    keyframes_s: list[float]
    #: every frame's time in presentation order, seconds from the first frame, rising (float64)
    frame_times_s: npt.NDArray[np.float64]
    #: the stream's frame rate (declared, else measured from the frame times)
    fps: Fraction
    #: last frame's time plus one frame period, seconds
    duration_s: float
    frames: int


@dataclass(frozen=True)
class SegmentPlan:
    """One segment of a split video; all times and indices are the whole video's."""

    index: int
    #: the segment's first output frame's time (a cut point), seconds
    start_s: float
    #: the next segment's start_s, or the video's duration for the last segment, seconds
    end_s: float
    #: global frame index of the segment's first output frame
    first_frame: int
    #: output frames: those with start_s <= time < end_s
    frames: int
    #: the cut point the segment is decoded from (at or before start_s - lead_in_s; start_s for the first)
    lead_in_start_s: float
    #: frames decoded before the first output frame, not drawn or written
    lead_in_frames: int


def index_packets(packets: Iterable[Packet], time_base: Fraction, rate: Fraction | None) -> VideoIndex:
    """The index of a video stream from its packets in decode order (pure; `scan` feeds it a file)."""
    pts_list: list[int] = []
    keys: list[int] = []
    for packet in packets:
        if packet.key:
            keys.append(len(pts_list))
        pts_list.append(packet.pts)
    if not pts_list:
        raise CorruptMedia("the video stream has no frames")
    if not keys:
        raise CorruptMedia("the video stream has no keyframe")
    pts_arr = np.asarray(pts_list, dtype=np.int64)
    origin = int(pts_arr.min())
    # a keyframe is clean when nothing after it in decode order is shown before it
    suffix_min = np.minimum.accumulate(pts_arr[::-1])[::-1]
    cut_pts = sorted({int(pts_arr[k]) for k in keys if suffix_min[k] >= pts_arr[k]})
    if not cut_pts or cut_pts[0] != origin:
        # the first frame shown must be a cut point, else nothing decodes from the start
        raise CorruptMedia("the video's first frame is not a keyframe")
    tb = float(time_base)
    times = (np.sort(pts_arr) - origin).astype(np.float64) * tb
    if len(times) > 1 and np.any(np.diff(times) <= 0):
        raise CorruptMedia("two frames of the video stream share a timestamp")
    fps = rate if rate else _measured_rate(times)
    duration_s = float(times[-1] + 1 / fps)
    keyframes_s = [(p - origin) * tb for p in cut_pts]
    return VideoIndex(keyframes_s, times, fps, duration_s, len(times))


def _measured_rate(times_s: npt.NDArray[np.float64]) -> Fraction:
    if len(times_s) < 2:
        return _FALLBACK_FPS
    step = float(np.median(np.diff(times_s)))
    return Fraction(1 / step).limit_denominator(1001)


def scan(path: Path) -> VideoIndex:
    """Demux `path`'s video stream without decoding it; UnsupportedMedia / CorruptMedia on bad input."""
    container_format = sniff_container(path)
    if container_format in STILL_FORMATS:
        raise UnsupportedMedia(f"{path.name} is a still image: nothing to split")
    with open_container(path, container_format) as container:
        stream = video_stream(container, path.name)
        if stream.time_base is None:
            raise CorruptMedia(f"{path.name}: the video stream has no time base")
        time_base = Fraction(stream.time_base)
        rate = Fraction(stream.average_rate) if stream.average_rate else None
        try:
            return index_packets(_packets(container, stream), time_base, rate)
        except CorruptMedia as exc:
            raise CorruptMedia(f"{path.name}: {exc.message}") from exc
        except MemoryError:
            raise
        except av.error.FFmpegError as exc:
            raise CorruptMedia(f"{path.name}: demuxing failed: {exc}") from exc


def _packets(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Iterable[Packet]:
    for packet in container.demux(stream):
        # the demuxer's end-of-stream marker carries no data
        if packet.size == 0 and packet.pts is None:
            continue
        if packet.pts is None:
            raise CorruptMedia("a video packet has no presentation timestamp")
        yield Packet(packet.pts, packet.dts, packet.is_keyframe)


def plan(
    index: VideoIndex, segment_s: float = 60.0, lead_in_s: float = 1.0, min_segment_s: float | None = None
) -> list[SegmentPlan]:
    """Segments of about `segment_s` (pure). Each starts at the cut point nearest a multiple of `segment_s`
    (never mid-GOP: a video with too few keyframes gets fewer, longer segments, or one); a segment shorter
    than `min_segment_s` (default segment_s / 2), the tail included, is merged into the one before it."""
    if segment_s <= 0 or lead_in_s < 0:
        raise ValueError("segment_s must be > 0 and lead_in_s >= 0")
    min_s = segment_s / 2 if min_segment_s is None else min_segment_s
    cuts = _cut_points(index.keyframes_s, index.duration_s, segment_s)
    kept: list[float] = [0.0]
    for cut in cuts:
        if cut - kept[-1] >= min_s - EPS_S:
            kept.append(cut)
    if len(kept) > 1 and index.duration_s - kept[-1] < min_s - EPS_S:
        kept.pop()
    bounds = [*kept, index.duration_s]
    times = index.frame_times_s
    segments = []
    for k, (start_s, end_s) in enumerate(itertools.pairwise(bounds)):
        first = int(np.searchsorted(times, start_s - EPS_S))
        last = int(np.searchsorted(times, end_s - EPS_S)) if k < len(kept) - 1 else index.frames
        lead_start_s = start_s if k == 0 else _at_or_before(index.keyframes_s, start_s - lead_in_s)
        lead_first = int(np.searchsorted(times, lead_start_s - EPS_S))
        segments.append(SegmentPlan(k, start_s, end_s, first, last - first, lead_start_s, first - lead_first))
    return segments


def _cut_points(keyframes_s: list[float], duration_s: float, segment_s: float) -> list[float]:
    """For each multiple of segment_s inside the video, the nearest cut point after the last one chosen."""
    cuts: list[float] = []
    inner = [k for k in keyframes_s if EPS_S < k < duration_s - EPS_S]
    target = segment_s
    while target < duration_s - EPS_S and inner:
        lo = bisect.bisect_right(inner, cuts[-1] + EPS_S) if cuts else 0
        candidates = inner[lo:]
        if not candidates:
            break
        j = bisect.bisect_left(candidates, target)
        near = [candidates[i] for i in (j - 1, j) if 0 <= i < len(candidates)]
        # ties go to the earlier keyframe
        best = min(near, key=lambda k: (abs(k - target), k))
        cuts.append(best)
        target += segment_s
        # a sparse keyframe can stand for several multiples: skip the ones it already passed
        while target <= best + EPS_S:
            target += segment_s
    return cuts


def _at_or_before(keyframes_s: list[float], t_s: float) -> float:
    i = bisect.bisect_right(keyframes_s, t_s + EPS_S)
    return keyframes_s[max(0, i - 1)]
