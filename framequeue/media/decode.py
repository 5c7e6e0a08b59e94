"""Decode every frame of a probed video to BGR arrays, and choose the frames to sample by time."""

from __future__ import annotations

from collections.abc import Generator
from fractions import Fraction
from math import floor
from pathlib import Path
from typing import Final, cast

import av.error
import numpy as np
import numpy.typing as npt

from framequeue.errors import CorruptMedia
from framequeue.media.frames import Frame, VideoInfo
from framequeue.media.probe import STILL_FORMATS, open_container, video_stream

#: a stream that decodes fewer than this share of its declared frames is truncated or damaged
MIN_DECODED_SHARE: Final = 0.95
#: largest denominator kept when a float sample rate becomes a Fraction (1/3 stays 1/3)
_MAX_RATE_DENOMINATOR: Final = 1_000_000


def as_rate(rate: float | Fraction) -> Fraction:
    """A frame rate as an exact Fraction; floats are read as the nearest simple fraction."""
    return rate if isinstance(rate, Fraction) else Fraction(rate).limit_denominator(_MAX_RATE_DENOMINATOR)


class SampleClock:
    """Picks frames at `sample_fps`: a frame is sampled when its time reaches the next k / sample_fps.

    Times are exact Fractions, so a 30000/1001 stream sampled at 1 fps takes frames 0, 30, 60, ..., 1019
    (not every 30th, which drifts). None samples every frame. Pure: feed times in presentation order.
    """

    def __init__(self, sample_fps: float | Fraction | None) -> None:
        self._fps = None if sample_fps is None else as_rate(sample_fps)
        if self._fps is not None and self._fps <= 0:
            raise ValueError(f"sample_fps must be > 0, got {sample_fps}")
        self._next = Fraction(0)

    def take(self, time: Fraction) -> bool:
        if self._fps is None:
            return True
        if time < self._next:
            return False
        # the next sample time strictly after this frame; sample times a sparse stream skipped are dropped
        self._next = (floor(time * self._fps) + 1) / self._fps
        return True


def decode_frames(path: Path, info: VideoInfo, threads: int) -> Generator[Frame, None, None]:
    """Every frame of `path` in presentation order, with pts counted from the first frame.

    A still image yields its first frame only. Raises CorruptMedia when ffmpeg fails mid-stream, when no
    frame decodes, or when clearly fewer frames decode than the container declares (a truncated upload).
    """
    with open_container(path, info.container_format) as container:
        stream = video_stream(container, path.name)
        # frame and slice threads; PyAV's default uses a single core
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = max(1, threads)
        time_base = Fraction(stream.time_base) if stream.time_base else info.time_base
        # pts used for frames that carry none: one frame period after the previous
        step = max(1, round(1 / (info.rate * time_base)))
        last_index = 0 if info.container_format in STILL_FORMATS else None
        first_pts: int | None = None
        last_pts = -step
        index = 0
        try:
            for av_frame in container.decode(stream):
                pts = av_frame.pts if av_frame.pts is not None else last_pts + step
                if first_pts is None:
                    first_pts = pts
                last_pts = pts
                image = cast(npt.NDArray[np.uint8], av_frame.to_ndarray(format="bgr24"))
                yield Frame(index, pts - first_pts, time_base, image)
                index += 1
                if index - 1 == last_index:
                    break
        except MemoryError:  # ffmpeg's ENOMEM too (the media child's cap): not the file's fault
            raise
        except av.error.FFmpegError as exc:
            raise CorruptMedia(f"{path.name}: decoding failed after {index} frames: {exc}") from exc
    if index == 0:
        raise CorruptMedia(f"{path.name}: no frame could be decoded")
    declared = info.frames_declared
    if declared is not None and index < declared * MIN_DECODED_SHARE:
        raise CorruptMedia(f"{path.name}: only {index} of the {declared} declared frames decode (truncated?)")
