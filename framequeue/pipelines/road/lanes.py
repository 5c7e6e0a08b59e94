"""Lanes over time and the ego lane: LSTR's lanes smoothed so they do not flicker, and the two either side
of the image centre as the ego lane's boundaries.

A lane is sampled at fixed image rows (`ROWS` between the top of the road and the bottom of the frame), so
lanes of consecutive frames compare row by row. Each inferred frame's lanes are matched to the kept ones by
their mean horizontal distance (Hungarian, gated), and a matched lane moves toward the new one by an
exponential smoothing with time constant SMOOTHING_S; rows or lanes not seen for HOLD_S are dropped, so a
lane missed on one frame stays drawn and a lane gone for good disappears within half a second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

#: rows a lane is sampled at, from this share of the frame height down to the bottom row
TOP_SHARE: Final = 0.35
ROWS: Final = 32
#: time constant of the lanes' exponential smoothing, seconds
SMOOTHING_S: Final = 0.15
#: a lane (or a row of it) not seen for longer is dropped, seconds
HOLD_S: Final = 0.5
#: two lanes of consecutive frames are the same lane when their mean distance is below this share of the width
MATCH_SHARE: Final = 0.06
#: a lane needs this many sampled rows to count (a short fragment is not a boundary)
MIN_ROWS: Final = 4
#: an ego lane narrower than this share of the frame width at the bottom row is implausible
MIN_EGO_WIDTH_SHARE: Final = 0.15
#: ... and wider than this
MAX_EGO_WIDTH_SHARE: Final = 1.6


def sample_rows(height_px: int) -> npt.NDArray[np.float64]:
    return np.linspace(TOP_SHARE * (height_px - 1), height_px - 1, ROWS)


def resample(polyline: npt.NDArray[np.float32], rows_y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """x of a polyline at each row (NaN outside the rows it spans)."""
    points = polyline[np.argsort(polyline[:, 1], kind="stable")].astype(np.float64)
    y, x = points[:, 1], points[:, 0]
    out = np.interp(rows_y, y, x, left=np.nan, right=np.nan)
    return out


@dataclass
class _Lane:
    #: x per row, pixels (NaN where unknown)
    x: npt.NDArray[np.float64]
    #: when each row was last seen, seconds
    seen_s: npt.NDArray[np.float64]
    score: float
    last_s: float


@dataclass(frozen=True)
class SmoothLane:
    #: Px2 (x, y) pixels, top to bottom
    points: npt.NDArray[np.float64]
    score: float
    #: x where the lane meets the bottom row (extrapolated along its lowest segment), pixels
    bottom_x: float


@dataclass(frozen=True)
class EgoLane:
    #: closed polygon (x, y) pixels: the left boundary top to bottom, then the right one bottom to top
    polygon: npt.NDArray[np.float64]
    left: SmoothLane
    right: SmoothLane

    def contains(self, x: float, y: float) -> bool:
        """Whether image point (x, y) lies inside the polygon (on the edge counts)."""
        poly = self.polygon.astype(np.float32).reshape(-1, 1, 2)
        # signed distance with a thousandth of a pixel's slack: the polygon is float32, points float64
        return bool(cv2.pointPolygonTest(poly, (float(x), float(y)), True) >= -1e-3)

    def vanishing_point(self) -> tuple[float, float] | None:
        """Where the two boundaries' straight lower parts meet, or None when they do not converge upward."""
        lines = [_lower_line(lane.points) for lane in (self.left, self.right)]
        if any(line is None for line in lines):
            return None
        (a1, b1), (a2, b2) = lines  # type: ignore[misc]
        if abs(a1 - a2) < 1e-9:
            return None
        y = (b2 - b1) / (a1 - a2)
        if y >= self.polygon[:, 1].max():
            return None
        return (a1 * y + b1, y)


def _lower_line(points: npt.NDArray[np.float64]) -> tuple[float, float] | None:
    """x = a*y + b through the lower half of a lane's points."""
    lower = points[len(points) // 2 :]
    if len(lower) < 2 or np.ptp(lower[:, 1]) < 1e-6:
        return None
    a, b = np.polyfit(lower[:, 1], lower[:, 0], 1)
    return float(a), float(b)


class LaneSmoother:
    """Lanes of one video over time (pure: times are given)."""

    def __init__(self, width_px: int, height_px: int) -> None:
        self.width_px, self.height_px = width_px, height_px
        self.rows_y = sample_rows(height_px)
        self._lanes: list[_Lane] = []

    def update(self, t_s: float, polylines: Sequence[npt.NDArray[np.float32]], scores: Sequence[float]) -> None:
        """Fold one inferred frame's lanes (already filtered by score) in."""
        fresh = [(resample(p, self.rows_y), float(s)) for p, s in zip(polylines, scores, strict=True)]
        fresh = [(x, s) for x, s in fresh if int(np.isfinite(x).sum()) >= MIN_ROWS]
        matched: set[int] = set()
        if self._lanes and fresh:
            cost = np.full((len(self._lanes), len(fresh)), 1e6)
            for i, lane in enumerate(self._lanes):
                for j, (x, _) in enumerate(fresh):
                    both = np.isfinite(lane.x) & np.isfinite(x)
                    if both.sum() >= 2:
                        cost[i, j] = float(np.abs(lane.x[both] - x[both]).mean())
            gate = MATCH_SHARE * self.width_px
            for i, j in zip(*linear_sum_assignment(cost), strict=True):
                if cost[i, j] <= gate:
                    self._merge(self._lanes[i], fresh[j][0], fresh[j][1], t_s)
                    matched.add(int(j))
        for j, (x, s) in enumerate(fresh):
            if j not in matched:
                self._lanes.append(_Lane(x.copy(), np.where(np.isfinite(x), t_s, -math.inf), s, t_s))
        self._expire(t_s)

    def _merge(self, lane: _Lane, x: npt.NDArray[np.float64], score: float, t_s: float) -> None:
        alpha = 1.0 - math.exp(-max(0.0, t_s - lane.last_s) / SMOOTHING_S)
        seen = np.isfinite(x)
        both = seen & np.isfinite(lane.x)
        lane.x[both] += alpha * (x[both] - lane.x[both])
        new_rows = seen & ~both
        lane.x[new_rows] = x[new_rows]
        lane.seen_s[seen] = t_s
        lane.score += alpha * (score - lane.score)
        lane.last_s = t_s

    def _expire(self, t_s: float) -> None:
        for lane in self._lanes:
            lane.x[lane.seen_s < t_s - HOLD_S - 1e-9] = np.nan
        self._lanes = [
            lane for lane in self._lanes if t_s - lane.last_s <= HOLD_S + 1e-9 and np.isfinite(lane.x).sum() >= MIN_ROWS
        ]

    def lanes(self) -> list[SmoothLane]:
        """The current lanes, left to right at the bottom."""
        out = []
        for lane in self._lanes:
            rows = np.isfinite(lane.x)
            points = np.stack((lane.x[rows], self.rows_y[rows]), axis=1)
            out.append(SmoothLane(points, lane.score, _bottom_x(points, self.height_px - 1)))
        return sorted(out, key=lambda lane: lane.bottom_x)

    def ego_lane(self, lanes: Sequence[SmoothLane] | None = None) -> EgoLane | None:
        """The lanes nearest the image centre on each side, when they bound a plausible lane."""
        lanes = self.lanes() if lanes is None else lanes
        return ego_lane(lanes, self.width_px, self.height_px)


def _bottom_x(points: npt.NDArray[np.float64], bottom_y: float) -> float:
    line = _lower_line(points)
    if line is None:
        return float(points[-1, 0])
    a, b = line
    return a * bottom_y + b


def ego_lane(lanes: Sequence[SmoothLane], width_px: int, height_px: int) -> EgoLane | None:
    """The ego lane bounded by the nearest lane left and right of the image centre at the bottom row, when
    it is plausibly wide and the two do not cross; None otherwise (the caller falls back to a corridor)."""
    centre = width_px / 2
    left = max((lane for lane in lanes if lane.bottom_x < centre), key=lambda lane: lane.bottom_x, default=None)
    right = min((lane for lane in lanes if lane.bottom_x >= centre), key=lambda lane: lane.bottom_x, default=None)
    if left is None or right is None:
        return None
    width = right.bottom_x - left.bottom_x
    if not MIN_EGO_WIDTH_SHARE * width_px <= width <= MAX_EGO_WIDTH_SHARE * width_px:
        return None
    top = max(left.points[0, 1], right.points[0, 1])
    bottom_y = float(height_px - 1)
    lx = _boundary(left, top, bottom_y)
    rx = _boundary(right, top, bottom_y)
    if lx is None or rx is None or np.any(lx[:, 0] >= np.interp(lx[:, 1], rx[:, 1], rx[:, 0])):
        return None
    polygon = np.concatenate((lx, rx[::-1]))
    return EgoLane(polygon, left, right)


def _boundary(lane: SmoothLane, top_y: float, bottom_y: float) -> npt.NDArray[np.float64] | None:
    """The lane's points from `top_y` down, extended to the bottom row along its lowest segment."""
    points = lane.points[lane.points[:, 1] >= top_y - 1e-6]
    if len(points) < 2:
        return None
    if points[-1, 1] < bottom_y - 0.5:
        points = np.concatenate((points, [[lane.bottom_x, bottom_y]]))
    return points
