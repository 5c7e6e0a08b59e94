"""Sniff, open and probe a video file (or a still image: a one-frame video); every limit is checked here,
before any frame is decoded.

Only local regular files are opened, only through the `file` protocol, and only with a demuxer from
`ALLOWED_FORMATS` chosen from the file's first bytes: ffmpeg never guesses, so a playlist, a concat
list or a URL inside a hostile upload cannot make it read anything else. A JPEG or PNG is a one-frame input
(its first image only: a file of concatenated JPEGs is not a video); the size its header declares is checked
against the pixel limit before ffmpeg decodes it, and a header that declares none is refused.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Final

import av
import av.container
import av.error
import av.video.stream

from framequeue.errors import CorruptMedia, MediaLimitsExceeded, UnsupportedMedia
from framequeue.media.frames import VideoInfo
from framequeue.media.headers import jpeg_is_whole, matroska_frame_sizes, still_frame_size
from framequeue.media.limits import MediaLimits

#: the demuxers framequeue opens; PyAV resolves each name inside ffmpeg's comma-separated lists
ALLOWED_FORMATS: Final = frozenset({"mp4", "matroska", "avi", "mpegts", "gif", "jpeg_pipe", "png_pipe"})
#: the single-image demuxers: one frame, at the rate ffmpeg gives an image (25 fps)
STILL_FORMATS: Final = frozenset({"jpeg_pipe", "png_pipe"})

#: bytes read to recognise a container (three MPEG-TS packets of 188 bytes fit)
_SNIFF_BYTES: Final = 600
#: ISO BMFF / QuickTime top-level atoms that may come first
_MP4_ATOMS: Final = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")
#: well-known non-video signatures, only to say what an upload was instead
_NOT_VIDEO: Final = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"#EXTM3U", "an HLS playlist (playlists are never opened)"),
    (b"ffconcat", "an ffconcat list (concat lists are never opened)"),
    (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg file (not an accepted container)"),
    (b"fLaC", "a FLAC audio file"),
)
#: AV_TIME_BASE: container durations are in microseconds
_AV_TIME_BASE: Final = 1_000_000


def sniff_container(path: Path) -> str:
    """The allow-listed demuxer for `path` judged by its first bytes; UnsupportedMedia otherwise."""
    if not path.is_file():
        raise UnsupportedMedia(f"not a video: {path.name} is not a regular local file")
    with path.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    if head[4:8] in _MP4_ATOMS:
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg_pipe"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png_pipe"
    # 188-byte TS packets, or 192-byte M2TS packets with a 4-byte timecode prefix
    for first, size in ((0, 188), (4, 192)):
        if len(head) > first + 2 * size and all(head[first + k * size] == 0x47 for k in range(3)):
            return "mpegts"
    raise UnsupportedMedia(f"not a video: {path.name} is {_describe(head)}")


def _describe(head: bytes) -> str:
    if not head:
        return "an empty file"
    for magic, what in _NOT_VIDEO:
        if head.startswith(magic):
            return what
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head[:64]):
        return "text"
    return f"unrecognised data (first bytes {head[:8].hex(' ')})"


def open_container(path: Path, container_format: str) -> av.container.InputContainer:
    """Open a sniffed local file with its allow-listed demuxer; CorruptMedia when ffmpeg refuses it."""
    if container_format not in ALLOWED_FORMATS:
        raise UnsupportedMedia(f"container format {container_format!r} is not accepted")
    # "file:" stops ffmpeg reading a name like "concat:a|b" as a protocol; the whitelist stops nested opens
    url = "file:" + str(path.resolve())
    try:
        return av.open(url, format=container_format, options={"protocol_whitelist": "file"})
    except MemoryError:
        raise
    except av.error.FFmpegError as exc:
        raise CorruptMedia(f"{path.name} looks like {container_format} but cannot be opened: {exc}") from exc


def video_stream(container: av.container.InputContainer, name: str) -> av.video.stream.VideoStream:
    """The first video stream that is not a cover picture; UnsupportedMedia when there is none."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    kinds = ", ".join(s.type for s in container.streams) or "none"
    raise UnsupportedMedia(
        f"not a video: {name} is a {container.format.name} container with no video stream (streams: {kinds})"
    )


def probe(path: Path, limits: MediaLimits) -> VideoInfo:
    """Facts about `path`'s video stream, after checking `limits` (MediaLimitsExceeded)."""
    container_format = sniff_container(path)
    if container_format in STILL_FORMATS:
        declared = still_frame_size(path)
        if declared is None:
            raise CorruptMedia(f"{path.name}: the image's header declares no frame size (truncated or damaged?)")
        if container_format == "jpeg_pipe" and not jpeg_is_whole(path):
            raise CorruptMedia(f"{path.name}: the JPEG has no end-of-image marker (truncated upload?)")
        if declared[0] * declared[1] > limits.max_pixels:
            raise MediaLimitsExceeded(
                f"{declared[0]}x{declared[1]} (declared) exceeds the limit of {limits.max_pixels} pixels a frame"
            )
    if container_format == "matroska":
        # ffmpeg decodes a first frame while it opens a file, and zeroes a size beyond its own maximum:
        # the size a Matroska header declares is checked before ffmpeg sees the file
        for width, height in matroska_frame_sizes(path):
            if width * height > limits.max_pixels:
                raise MediaLimitsExceeded(
                    f"{width}x{height} (declared) exceeds the limit of {limits.max_pixels} pixels a frame"
                )
    with open_container(path, container_format) as container:
        if len(container.streams) > limits.max_streams:
            raise MediaLimitsExceeded(
                f"{len(container.streams)} streams exceed the limit of {limits.max_streams}"
            )
        stream = video_stream(container, path.name)
        ctx = stream.codec_context
        width, height = ctx.width, ctx.height
        if width <= 0 or height <= 0:
            raise CorruptMedia(f"{path.name}: video stream declares no frame size ({width}x{height})")
        if width * height > limits.max_pixels:
            raise MediaLimitsExceeded(
                f"{width}x{height} exceeds the limit of {limits.max_pixels} pixels a frame"
            )
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            raise CorruptMedia(f"{path.name}: video stream declares no frame rate")
        time_base = stream.time_base or Fraction(1, _AV_TIME_BASE)
        duration_s: float | None = None
        if stream.duration:
            duration_s = float(stream.duration * time_base)
        elif container.duration:
            duration_s = container.duration / _AV_TIME_BASE
        if duration_s is not None and duration_s > limits.max_duration_s:
            raise MediaLimitsExceeded(
                f"duration {duration_s:.0f} s exceeds the limit of {limits.max_duration_s:.0f} s"
            )
        frames_declared = 1 if container_format in STILL_FORMATS else (stream.frames or None)
        # a container that does not count frames still bounds them through its duration
        frames_bound = frames_declared or (round(duration_s * rate) if duration_s is not None else 0)
        if frames_bound > limits.max_frames:
            raise MediaLimitsExceeded(f"{frames_bound} frames exceed the limit of {limits.max_frames}")
        return VideoInfo(
            width=width,
            height=height,
            rate=Fraction(rate),
            time_base=Fraction(time_base),
            frames_declared=frames_declared,
            duration_s=duration_s,
            codec=ctx.name,
            container_format=container_format,
        )
