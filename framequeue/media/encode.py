"""H.264 (libx264, yuv420p) MP4 writer that keeps the input's size, rate and timestamps, with the index
(`moov`) at the front (`+faststart`) so a browser can play and seek it before it has all of it."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Final

import av
import av.container
import av.video.stream
import numpy as np
import numpy.typing as npt

#: libx264 presets, fastest first
PRESETS: Final = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
DEFAULT_PRESET: Final = "veryfast"
#: libx264 constant-rate factor: 0 lossless .. 51 worst; 23 is x264's default
DEFAULT_CRF: Final = 23
#: x264 options of a segment of a split job: headers that do not depend on the content (so every segment
#: has the same SPS/PPS) and closed GOPs (no frame refers across a keyframe), so segments join by remux
STITCHABLE_X264_PARAMS: Final = "stitchable=1:open-gop=0"


class VideoEncoder:
    """Write BGR frames with their input pts; one output frame per `write` call.

    yuv420p needs even sides, so an odd width or height loses its last column or row. `stitchable` is for the
    segments of a split job: outputs of encoders with the same arguments then join seamlessly by
    `remux.concat`; it is off for a whole video, whose output it leaves unchanged.
    """

    def __init__(
        self,
        path: Path,
        resolution_wh: tuple[int, int],
        rate: Fraction,
        time_base: Fraction,
        preset: str = DEFAULT_PRESET,
        crf: int = DEFAULT_CRF,
        threads: int = 1,
        stitchable: bool = False,
    ) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown x264 preset {preset!r}")
        self.width, self.height = resolution_wh[0] & ~1, resolution_wh[1] & ~1
        self.time_base = time_base
        self.frames_written = 0
        self._last_pts: int | None = None
        self._closed = False
        self._container: av.container.OutputContainer = av.open(
            str(path), "w", format="mp4", options={"movflags": "+faststart"}
        )
        try:
            options = {"preset": preset, "crf": str(crf)}
            if stitchable:
                options["x264-params"] = STITCHABLE_X264_PARAMS
            stream = self._container.add_stream("libx264", rate=rate, options=options)
            stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
            # the input's time base, so its pts (and VFR timing) pass through unchanged
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
            stream.codec_context.thread_count = max(1, threads)
        except BaseException:
            self._container.close()
            raise
        self._stream: av.video.stream.VideoStream = stream

    def write(self, image: npt.NDArray[np.uint8], pts: int) -> None:
        """Encode one HxWx3 uint8 BGR image at `pts` (time_base units); pts must rise, else it is bumped."""
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        if image.shape[0] != self.height or image.shape[1] != self.width:
            image = np.ascontiguousarray(image[: self.height, : self.width])
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = pts
        frame.time_base = self.time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flush delayed frames and finish the file."""
        if self._closed:
            return
        self._closed = True
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()

    def abort(self) -> None:
        """Close without flushing (the file is then incomplete); no-op once closed."""
        if not self._closed:
            self._closed = True
            self._container.close()

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
