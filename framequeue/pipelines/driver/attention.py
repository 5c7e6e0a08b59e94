"""Where the driver looks, from the head pose: the neutral pose (eyes on the road), and off road with
hysteresis. Pure: samples and times are given.

Head pose catches head turns, not eye-only glances: a driver who looks at a phone in the lap by moving only
the eyes reads as on road.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

#: the neutral pose is the median pose over this much time with the driver's face, from the start
NEUTRAL_WINDOW_S: Final = 10.0
#: a measured neutral pose is clamped to this far from facing the camera, degrees
MAX_NEUTRAL_DEG: Final = 30.0


def _clamp(value: float) -> float:
    return max(-MAX_NEUTRAL_DEG, min(MAX_NEUTRAL_DEG, value))


class NeutralPose:
    """The driver's own straight-ahead pose: the job's, or the median of the first NEUTRAL_WINDOW_S seconds
    with a face (provisional, the median so far, until then), clamped to ±30 degrees."""

    def __init__(self, given: Mapping[str, float] | None, window_s: float = NEUTRAL_WINDOW_S) -> None:
        self.window_s = window_s
        self._given = None if given is None else (float(given["yaw_deg"]), float(given["pitch_deg"]))
        self._yaws: list[float] = []
        self._pitches: list[float] = []
        self._seen_s = 0.0

    @property
    def source(self) -> str:
        """`given`, `measured` (the window is full), `provisional` (still filling) or `none` (no face yet)."""
        if self._given is not None:
            return "given"
        if self._seen_s >= self.window_s - 1e-9:
            return "measured"
        return "provisional" if self._yaws else "none"

    def add(self, yaw_deg: float, pitch_deg: float, covers_s: float) -> None:
        """A pose of the driver's face that stands for `covers_s` seconds of video (one frame's period)."""
        if self._given is not None or self._seen_s >= self.window_s - 1e-9:
            return
        self._yaws.append(yaw_deg)
        self._pitches.append(pitch_deg)
        self._seen_s += covers_s

    @property
    def value(self) -> tuple[float, float]:
        """(yaw_deg, pitch_deg) of the neutral pose; (0, 0) before any face."""
        if self._given is not None:
            return self._given
        if not self._yaws:
            return (0.0, 0.0)
        return (_clamp(statistics.median(self._yaws)), _clamp(statistics.median(self._pitches)))

    def to_json(self) -> dict[str, object]:
        yaw, pitch = self.value
        return {
            "yaw_deg": round(yaw, 2),
            "pitch_deg": round(pitch, 2),
            "source": self.source,
            "window_s": self.window_s,
            "samples": len(self._yaws),
        }


@dataclass(frozen=True)
class OffRoadRule:
    """Off road past these deviations from the neutral pose; back on road only below the `back` ones."""

    #: |yaw - yaw0| above this is off road, degrees
    yaw_deg: float = 30.0
    #: pitch - pitch0 above this (the face tilted down) is off road, degrees
    pitch_down_deg: float = 20.0
    #: back on road when |yaw - yaw0| is below this ...
    yaw_back_deg: float = 25.0
    #: ... and pitch - pitch0 below this, degrees
    pitch_back_deg: float = 15.0

    @classmethod
    def of(cls, params: Mapping[str, float]) -> OffRoadRule:
        return cls(params["yaw_deg"], params["pitch_down_deg"], params["yaw_back_deg"], params["pitch_back_deg"])

    def next(self, was_off_road: bool, yaw_dev_deg: float, pitch_dev_deg: float) -> bool:
        """Whether the driver is off road now, given the state before and the pose's deviation from neutral."""
        if was_off_road:
            return not (abs(yaw_dev_deg) < self.yaw_back_deg and pitch_dev_deg < self.pitch_back_deg)
        return abs(yaw_dev_deg) > self.yaw_deg or pitch_dev_deg > self.pitch_down_deg
