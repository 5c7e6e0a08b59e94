"""Distance, time-to-collision and ego speed over time, from a tracked vehicle's widths in pixels.

A vehicle's width w in pixels is f·W/Z, so 1/w is proportional to its distance Z and, at a constant closing
speed, linear in time. Both numbers come from a least-squares line through 1/w over a recent window,
evaluated at the current time: the distance over ~0.5 s (smoothing without the lag of a moving average), and
TTC = -(1/ŵ) / (d(1/w)/dt) over ~1 s with at least 10 samples, since a ratio of two consecutive widths
(the textbook TTC) is noise: 0.7 px on a 40 px box is already ~50 % error at a 5 s TTC.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from framequeue.pipelines.speed import EgoSpeed

__all__ = ["EgoSpeed", "WidthHistory", "fit_line", "time_gap_s", "ttc_from_inverse_widths"]

#: window of the distance's smoothing fit, seconds
DISTANCE_WINDOW_S: Final = 0.5
#: window of the TTC fit, seconds, and the samples it needs at least
TTC_WINDOW_S: Final = 1.0
TTC_MIN_SAMPLES: Final = 10
#: a sparse sampling may stretch the TTC window to reach TTC_MIN_SAMPLES, up to this, seconds
TTC_MAX_WINDOW_S: Final = 2.0
#: TTCs above this are not reported (the vehicle is barely closing), seconds
TTC_MAX_S: Final = 10.0
#: widths kept per track, seconds
HISTORY_S: Final = max(DISTANCE_WINDOW_S, TTC_MAX_WINDOW_S) + 0.5


def fit_line(t_s: Sequence[float], y: Sequence[float], at_s: float) -> tuple[float, float]:
    """Least-squares line through (t, y): (its value at `at_s`, its slope per second)."""
    t = np.asarray(t_s, np.float64) - at_s
    v = np.asarray(y, np.float64)
    if len(t) < 2:
        raise ValueError("a line needs at least 2 samples")
    tm, vm = t.mean(), v.mean()
    var = float(((t - tm) ** 2).sum())
    slope = 0.0 if var == 0 else float(((t - tm) * (v - vm)).sum() / var)
    return vm - slope * tm, slope


def ttc_from_inverse_widths(
    t_s: Sequence[float], inv_w: Sequence[float], at_s: float, max_ttc_s: float = TTC_MAX_S
) -> float | None:
    """TTC at `at_s` from samples of 1/width: None unless closing (1/w falling) and below `max_ttc_s`."""
    value, slope = fit_line(t_s, inv_w, at_s)
    if slope >= 0 or value <= 0:
        return None
    ttc = -value / slope
    return ttc if ttc < max_ttc_s else None


@dataclass(frozen=True)
class WidthSample:
    t_s: float
    #: the detector's box width, pixels (not the tracker's smoothed box)
    width_px: float


class WidthHistory:
    """The recent widths of one track, with the distance and TTC they give."""

    def __init__(self) -> None:
        self._samples: deque[WidthSample] = deque()

    def add(self, t_s: float, width_px: float) -> None:
        if width_px <= 0 or not math.isfinite(width_px):
            return
        if self._samples and t_s <= self._samples[-1].t_s:
            return
        self._samples.append(WidthSample(t_s, width_px))
        while self._samples and self._samples[0].t_s < t_s - HISTORY_S:
            self._samples.popleft()

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def last_t_s(self) -> float | None:
        return self._samples[-1].t_s if self._samples else None

    def _window(
        self, now_s: float, window_s: float, min_samples: int = 1, max_window_s: float = 0.0
    ) -> list[WidthSample]:
        recent = [s for s in self._samples if now_s - window_s - 1e-9 <= s.t_s <= now_s + 1e-9]
        if len(recent) < min_samples and max_window_s > window_s:
            older = [s for s in self._samples if s.t_s <= now_s + 1e-9][-min_samples:]
            if len(older) == min_samples and now_s - older[0].t_s <= max_window_s + 1e-9:
                recent = older
        return recent

    def inverse_width(self, now_s: float, window_s: float = DISTANCE_WINDOW_S) -> float | None:
        """1/width smoothed over the window and evaluated at `now_s` (the last width with one sample)."""
        recent = self._window(now_s, window_s)
        if not recent:
            return None
        if len(recent) == 1:
            return 1.0 / recent[0].width_px
        value, _ = fit_line([s.t_s for s in recent], [1.0 / s.width_px for s in recent], now_s)
        return value if value > 0 else 1.0 / recent[-1].width_px

    def distance_m(self, now_s: float, focal_px: float, real_width_m: float) -> float | None:
        inv = self.inverse_width(now_s)
        return None if inv is None else focal_px * real_width_m * inv

    def ttc_s(self, now_s: float, window_s: float = TTC_WINDOW_S, min_samples: int = TTC_MIN_SAMPLES) -> float | None:
        recent = self._window(now_s, window_s, min_samples, TTC_MAX_WINDOW_S)
        if len(recent) < min_samples:
            return None
        return ttc_from_inverse_widths([s.t_s for s in recent], [1.0 / s.width_px for s in recent], now_s)


def time_gap_s(distance_m: float | None, speed_mps: float | None, min_speed_mps: float = 0.5) -> float | None:
    """Seconds until the ego vehicle reaches where the lead is now; None without both, or when (nearly) still."""
    if distance_m is None or speed_mps is None or speed_mps < min_speed_mps:
        return None
    return distance_m / speed_mps
