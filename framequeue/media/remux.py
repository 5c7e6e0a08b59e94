"""Packet remux of a video stream, never decoded or re-encoded: `cut` a keyframe-aligned piece out of a
video, `concat` encoded segments back into one MP4.

Only the video stream is carried; audio and every other stream are dropped (framequeue's outputs have
none). Times are seconds from the source's first frame, as `keyframes.scan` gives them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final

import av
import av.container
import av.error
import av.packet
import av.video.stream

from framequeue.errors import CorruptMedia, UnsupportedMedia
from framequeue.media.probe import STILL_FORMATS, open_container, sniff_container, video_stream

#: how close a requested time must be to a keyframe's, seconds (a frame period is >= 1 ms)
KEYFRAME_TOLERANCE_S: Final = 1e-4


@dataclass(frozen=True)
class CutResult:
    """What `cut` wrote."""

    #: frames (packets) written
    frames: int
    #: the source time the piece's first frame had (its own pts are rebased to start at 0), seconds
    start_s: float
    #: the source time of the keyframe it stopped before, or of the source's end, seconds
    end_s: float


def cut(src: Path, dst: Path, start_s: float, end_s: float | None = None) -> CutResult:
    """Copy to MP4 `dst` the packets of `src`'s video from the keyframe at `start_s` up to, not including, the
    keyframe at `end_s` (None, or the video's duration: to the end). Both must be cut points of
    `keyframes.scan(src)`: a time that is not a keyframe raises ValueError, so a cut never splits a GOP.
    Timestamps are rebased: the piece's first frame is at 0, and source time = piece time + `start_s`. The
    demuxer seeks to the start keyframe (reading from the file's start only where seeking is not exact)."""
    if end_s is not None and end_s <= start_s:
        raise ValueError(f"end_s {end_s} must come after start_s {start_s}")
    with _open_video(src) as (container, stream):
        tb = _time_base(stream, src)
        origin = _origin(container, stream, src)
        frames, shift, last_s, stop_s = 0, None, 0.0, None
        with av.open(str(dst), "w", format="mp4") as out:
            try:
                ostream = out.add_stream_from_template(stream)
            except ValueError as exc:  # e.g. VP8: MP4 has no mapping for it
                raise UnsupportedMedia(f"{src.name}: its {stream.codec_context.name} video cannot be copied "
                                       f"into MP4 pieces ({exc})") from None
            for packet in _packets_from(container, stream, src, origin + math.floor(Fraction(start_s) / tb), origin):
                assert packet.pts is not None
                t_s = float((packet.pts - origin) * tb)
                if shift is None:
                    if packet.is_keyframe and abs(t_s - start_s) <= KEYFRAME_TOLERANCE_S:
                        shift = packet.pts
                    elif t_s > start_s + KEYFRAME_TOLERANCE_S and packet.is_keyframe:
                        raise ValueError(f"{src.name}: no keyframe at start_s {start_s} (next one at {t_s:.6f} s)")
                    else:
                        continue
                elif packet.is_keyframe and end_s is not None and t_s >= end_s - KEYFRAME_TOLERANCE_S:
                    if t_s > end_s + KEYFRAME_TOLERANCE_S:
                        raise ValueError(f"{src.name}: no keyframe at end_s {end_s} (next one at {t_s:.6f} s)")
                    stop_s = t_s
                    break
                # before mux, which rescales the packet to the output's time base
                last_s = max(last_s, t_s + float((packet.duration or 0) * tb))
                packet.pts -= shift
                if packet.dts is not None:
                    packet.dts -= shift
                packet.stream = ostream
                packet.time_base = tb
                out.mux(packet)
                frames += 1
    if shift is None:
        raise ValueError(f"{src.name}: no keyframe at start_s {start_s}")
    if end_s is not None and stop_s is None and end_s < last_s - KEYFRAME_TOLERANCE_S:
        raise ValueError(f"{src.name}: no keyframe at end_s {end_s}")
    return CutResult(frames, start_s, stop_s if stop_s is not None else last_s)


def _origin(container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: Path) -> int:
    """The first frame's pts: the smallest of the first GOP's (read up to the second keyframe)."""
    origin: int | None = None
    for packet in _demux(container, stream, path):
        assert packet.pts is not None
        if packet.is_keyframe and origin is not None:
            break
        origin = packet.pts if origin is None else min(origin, packet.pts)
    if origin is None:
        raise CorruptMedia(f"{path.name}: no video packets")
    return origin


def _packets_from(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    path: Path,
    target_pts: int,
    origin: int,
) -> Iterator[av.packet.Packet[av.video.stream.VideoStream]]:
    """Packets in decode order from the keyframe at or before `target_pts`; from the file's start where the
    demuxer cannot seek there (it landed after the target, or on no keyframe)."""
    if target_pts > origin:
        try:
            container.seek(target_pts, stream=stream, backward=True, any_frame=False)
            packets = _demux(container, stream, path)
            first = next(packets, None)
            if first is not None and first.is_keyframe and first.pts is not None and first.pts <= target_pts:
                yield first
                yield from packets
                return
        except av.error.FFmpegError:
            pass
    try:
        container.seek(0)
    except av.error.FFmpegError as exc:
        raise CorruptMedia(f"{path.name}: cannot go back to the start: {exc}") from exc
    yield from _demux(container, stream, path)


@dataclass(frozen=True)
class _Part:
    path: Path
    codec: str
    size_wh: tuple[int, int]
    pix_fmt: str | None
    extradata: bytes | None


def concat(parts: Sequence[Path], dst: Path) -> int:
    """Join encoded segments into one MP4 `dst` (`+faststart`: the index before the data) by remux, with
    continuous timestamps: each part follows the previous one's last frame by one frame period. The parts
    must share codec, size, pixel format and codec extradata (SPS/PPS), i.e. come from identically set
    encoders with closed GOPs (`encode.VideoEncoder(stitchable=True)`); UnsupportedMedia names the first
    that differs, CorruptMedia a part that cannot be read whole; `dst` is removed on any error. Returns the
    frames written."""
    if not parts:
        raise ValueError("concat needs at least one part")
    described = [_describe(p) for p in parts]
    first = described[0]
    for part in described[1:]:
        for field, a, b in (
            ("codec", first.codec, part.codec),
            ("size", first.size_wh, part.size_wh),
            ("pixel format", first.pix_fmt, part.pix_fmt),
            ("codec extradata (SPS/PPS)", first.extradata, part.extradata),
        ):
            if a != b:
                raise UnsupportedMedia(
                    f"cannot concatenate {part.path.name} after {first.path.name}: {field} differs "
                    f"({_show(b)} vs {_show(a)}); segments must come from identically set encoders"
                )
    try:
        return _join(parts, dst)
    except BaseException:
        dst.unlink(missing_ok=True)
        raise


def _join(parts: Sequence[Path], dst: Path) -> int:
    frames = 0
    #: where the next part starts, seconds
    offset_s = Fraction(0)
    last_dts: Fraction | None = None
    with av.open(str(dst), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        ostream: av.video.stream.VideoStream | None = None
        for path in parts:
            with _open_video(path) as (container, stream):
                tb = _time_base(stream, path)
                if ostream is None:
                    ostream = out.add_stream_from_template(stream)
                period = _period(stream, tb)
                origin: int | None = None
                end = part_frames = 0
                for packet in _demux(container, stream, path):
                    assert packet.pts is not None
                    if origin is None:
                        if not packet.is_keyframe:
                            raise UnsupportedMedia(f"{path.name} does not start with a keyframe; it cannot be joined")
                        origin = end = packet.pts
                    if packet.pts < origin:
                        raise UnsupportedMedia(f"{path.name} shows a frame before its first keyframe (open GOP)")
                    pts_s = offset_s + (packet.pts - origin) * tb
                    dts_s = pts_s if packet.dts is None else offset_s + (packet.dts - origin) * tb
                    if last_dts is not None and dts_s <= last_dts:
                        raise UnsupportedMedia(
                            f"{path.name}: decode times would not rise at the join (different encoder delay?); "
                            "segments must come from identically set encoders"
                        )
                    last_dts = dts_s
                    end = max(end, packet.pts + (packet.duration or period))
                    packet.pts, packet.dts = round(pts_s / tb), round(dts_s / tb)
                    packet.stream = ostream
                    packet.time_base = tb
                    out.mux(packet)
                    part_frames += 1
                frames += part_frames
                if origin is None:
                    raise CorruptMedia(f"{path.name}: no video packets")
                if stream.frames and part_frames < stream.frames:
                    raise CorruptMedia(f"{path.name}: {part_frames} of its {stream.frames} frames read (truncated?)")
                offset_s += (end - origin) * tb
    return frames


def _period(stream: av.video.stream.VideoStream, tb: Fraction) -> int:
    """One frame period in the stream's time base, for packets that carry no duration."""
    rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
    return max(1, round(1 / (rate * tb)))


def _time_base(stream: av.video.stream.VideoStream, path: Path) -> Fraction:
    if stream.time_base is None:
        raise CorruptMedia(f"{path.name}: the video stream has no time base")
    return Fraction(stream.time_base)


def _show(value: object) -> str:
    return f"{len(value)} bytes" if isinstance(value, bytes) else repr(value)


def _describe(path: Path) -> _Part:
    with _open_video(path) as (_, stream):
        ctx = stream.codec_context
        return _Part(path, ctx.name, (ctx.width, ctx.height), ctx.format.name if ctx.format else None, ctx.extradata)


@contextmanager
def _open_video(path: Path) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    """The allow-listed container of `path` and its video stream; media errors for anything else."""
    container_format = sniff_container(path)
    if container_format in STILL_FORMATS:
        raise UnsupportedMedia(f"{path.name} is a still image, not a video to remux")
    with open_container(path, container_format) as container:
        yield container, video_stream(container, path.name)


def _demux(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: Path
) -> Iterator[av.packet.Packet[av.video.stream.VideoStream]]:
    """The stream's packets in decode order, without the end marker; CorruptMedia when demuxing fails."""
    try:
        for packet in container.demux(stream):
            if packet.size == 0 and packet.pts is None:
                continue
            if packet.pts is None:
                raise CorruptMedia(f"{path.name}: a video packet has no presentation timestamp")
            yield packet
    except MemoryError:
        raise
    except av.error.FFmpegError as exc:
        raise CorruptMedia(f"{path.name}: demuxing failed: {exc}") from exc
