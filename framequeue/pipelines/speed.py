"""The ego vehicle's speed over a video, as a job gives it: a constant `speed_mps`, or fleets' telematics as
`speed_track: [[t_s, speed_mps], ...]`, interpolated linearly; and the checks of those params at submit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from framequeue.errors import InvalidParams
from framequeue.pipelines.params import is_number, number

#: fastest ego speed accepted, m/s (360 km/h)
MAX_SPEED_MPS: Final = 100.0


def check_speed(speed_mps: Any, track: Any) -> tuple[float | None, list[list[float]] | None]:
    """A constant speed, or a track of [t_s, speed_mps] points with rising times; not both."""
    if speed_mps is not None and track is not None:
        raise InvalidParams("speed_track: give speed_mps or speed_track, not both")
    if speed_mps is not None:
        return number(speed_mps, "speed_mps", 0.0, MAX_SPEED_MPS), None
    if track is None:
        return None, None
    if not isinstance(track, list) or len(track) < 2:
        raise InvalidParams("speed_track: must be a list of at least 2 [t_s, speed_mps] points")
    points: list[list[float]] = []
    for i, point in enumerate(track):
        field = f"speed_track[{i}]"
        if not isinstance(point, list | tuple) or len(point) != 2 or not all(is_number(v) for v in point):
            raise InvalidParams(f"{field}: must be [t_s, speed_mps] with finite numbers, got {point!r}")
        t_s = number(point[0], f"{field}.t_s", 0.0)
        v = number(point[1], f"{field}.speed_mps", 0.0, MAX_SPEED_MPS)
        if points and t_s <= points[-1][0]:
            raise InvalidParams(
                f"{field}: times must rise strictly (sorted by t_s); {t_s:g} s follows {points[-1][0]:g} s"
            )
        points.append([t_s, v])
    return None, points


class EgoSpeed:
    """The ego vehicle's speed at a time: a constant, or a track interpolated linearly (None outside it)."""

    def __init__(self, speed_mps: float | None, track: Sequence[Sequence[float]] | None) -> None:
        self.constant = speed_mps
        self._t = np.asarray([p[0] for p in track], np.float64) if track else None
        self._v = np.asarray([p[1] for p in track], np.float64) if track else None

    @property
    def known(self) -> bool:
        return self.constant is not None or self._t is not None

    def at(self, t_s: float) -> float | None:
        if self.constant is not None:
            return self.constant
        if self._t is None or self._v is None or not self._t[0] <= t_s <= self._t[-1]:
            return None
        return float(np.interp(t_s, self._t, self._v))
