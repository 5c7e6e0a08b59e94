"""The one frame type and the facts a probe learns about a video before decoding it."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Frame:
    #: 0-based position in presentation order among the decoded frames
    index: int
    #: presentation timestamp in `time_base` units, counted from the stream's first frame (which is 0)
    pts: int
    #: seconds per pts unit (the stream's time base, e.g. 1/12800)
    time_base: Fraction
    #: HxWx3 uint8, BGR (OpenCV order), C-contiguous; owned by the frame, so stages may draw on it
    image: npt.NDArray[np.uint8]

    @property
    def time(self) -> Fraction:
        """Exact presentation time in seconds from the first frame."""
        return self.pts * self.time_base

    @property
    def time_s(self) -> float:
        return float(self.time)


@dataclass(frozen=True, slots=True)
class VideoInfo:
    width: int
    height: int
    #: average frame rate, e.g. Fraction(30000, 1001); never rounded to an int
    rate: Fraction
    #: seconds per pts unit of the video stream
    time_base: Fraction
    #: frame count the container declares; None when it does not say
    frames_declared: int | None
    #: None when neither the stream nor the container says
    duration_s: float | None
    #: decoder name, e.g. "h264"
    codec: str
    #: allow-listed demuxer name the file was opened with, e.g. "mp4"
    container_format: str

    @property
    def resolution_wh(self) -> tuple[int, int]:
        return (self.width, self.height)
