"""The distraction rules fleets coach on, over per-frame attention. Pure: frames are fed in time order, each
covering [t_s, t_s + period_s).

- distraction_long: off road continuously for `long_s` (3.0 s) or more; from the glance's start to its end.
- distraction_short: `short_total_s` (10 s) or more off road within a `short_window_s` (30 s) window; from the
  first counted glance in the window to the end of the last one before the window's total fell below it. A
  glance is counted in one such event at most: the next one counts only off-road time after the last ended.
- driver_not_visible: no driver face for `not_visible_s` (3 s) or more (camera covered or turned, driver
  gone); from the first frame without the face to the first with it again.

Off-road time counts only at or above `min_speed_mps` when the job gives a speed (a driver looking around at
a standstill is not distracted); without a speed every frame counts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

#: tolerance of time comparisons, seconds
EPS_S: Final = 1e-6
LONG: Final = "distraction_long"
SHORT: Final = "distraction_short"
NOT_VISIBLE: Final = "driver_not_visible"


@dataclass(frozen=True)
class Attention:
    """What the rules read of one frame."""

    t_s: float
    #: the driver's face is seen (or held: a face lost for a moment keeps its last state)
    visible: bool
    off_road: bool
    #: the ego speed when the job gives one, None otherwise or where the speed track is silent
    speed_mps: float | None
    #: |yaw - yaw0| of the driver, degrees, when visible
    abs_yaw_dev_deg: float | None
    track_id: int | None


@dataclass
class _Run:
    """A run of frames that meet a condition."""

    start_s: float
    end_s: float
    max_abs_yaw_deg: float
    track_id: int | None


class DriverEvents:
    def __init__(self, rule: Mapping[str, float], period_s: float, speed_given: bool) -> None:
        self.long_s = rule["long_s"]
        self.short_total_s = rule["short_total_s"]
        self.window_s = rule["short_window_s"]
        self.min_speed_mps = rule["min_speed_mps"]
        self.not_visible_s = rule["not_visible_s"]
        self.period_s = period_s
        self.speed_given = speed_given
        self.events: list[dict[str, Any]] = []
        self._glance: _Run | None = None
        self._hidden: _Run | None = None
        #: counted glances (closed and the open one) that may still fall in the window
        self._glances: deque[_Run] = deque()
        self._short: dict[str, Any] | None = None
        #: where the last distraction_short ended: off-road time before it is not counted again
        self._short_floor_s = -float("inf")

    def counts(self, a: Attention) -> bool:
        """Whether this frame is counted off-road time (visible, off road, and fast enough if a speed is given)."""
        fast = not self.speed_given or (a.speed_mps is not None and a.speed_mps >= self.min_speed_mps)
        return a.visible and a.off_road and fast

    def update(self, a: Attention) -> None:
        end_s = a.t_s + self.period_s
        if self.counts(a):
            yaw = a.abs_yaw_dev_deg or 0.0
            if self._glance is None:
                self._glance = _Run(a.t_s, end_s, yaw, a.track_id)
                self._glances.append(self._glance)
            else:
                self._glance.end_s = end_s
                self._glance.max_abs_yaw_deg = max(self._glance.max_abs_yaw_deg, yaw)
        elif self._glance is not None:
            self._close_glance()
        if not a.visible:
            if self._hidden is None:
                self._hidden = _Run(a.t_s, end_s, 0.0, a.track_id)
            self._hidden.end_s = end_s
        elif self._hidden is not None:
            self._close_hidden()
        self._update_short(end_s)

    def _close_glance(self) -> None:
        g = self._glance
        assert g is not None
        if g.end_s - g.start_s >= self.long_s - EPS_S:
            self.events.append(
                self._event(LONG, g.start_s, g.end_s, g.max_abs_yaw_deg, g.end_s - g.start_s, g.track_id)
            )
        self._glance = None

    def _close_hidden(self) -> None:
        h = self._hidden
        assert h is not None
        if h.end_s - h.start_s >= self.not_visible_s - EPS_S:
            self.events.append(self._event(NOT_VISIBLE, h.start_s, h.end_s, None, None, h.track_id))
        self._hidden = None

    def window_total_s(self, now_end_s: float, floor_s: float = -float("inf")) -> float:
        """Counted off-road seconds in the window that ends at `now_end_s` (and after `floor_s`)."""
        start = max(now_end_s - self.window_s, floor_s)
        return sum(max(0.0, min(g.end_s, now_end_s) - max(g.start_s, start)) for g in self._glances)

    def _update_short(self, end_s: float) -> None:
        window_start = end_s - self.window_s
        while self._glances and self._glances[0].end_s <= window_start and self._glances[0] is not self._glance:
            self._glances.popleft()
        floor = self._short_floor_s
        start = max(window_start, floor)
        total = self.window_total_s(end_s, floor)
        in_window = [g for g in self._glances if g.end_s > start]
        if total >= self.short_total_s - EPS_S:
            first = max(in_window[0].start_s, start)
            if self._short is None:
                self._short = {"start_s": first, "glances": {}}
            for g in in_window:
                self._short["glances"][id(g)] = g
        elif self._short is not None:
            self._close_short()

    def _close_short(self) -> None:
        assert self._short is not None
        glances: list[_Run] = list(self._short["glances"].values())
        start = self._short["start_s"]
        end = max(g.end_s for g in glances)
        off = sum(max(0.0, g.end_s - max(g.start_s, start)) for g in glances)
        yaw = max(g.max_abs_yaw_deg for g in glances)
        self.events.append(self._event(SHORT, start, end, yaw, off, glances[-1].track_id))
        self._short = None
        self._short_floor_s = end

    def current_glance_s(self, t_s: float) -> float:
        """How long the counted glance in progress has lasted, 0 when none (the overlay's timer)."""
        return 0.0 if self._glance is None else self._glance.end_s - self._glance.start_s

    def active(self) -> list[str]:
        """Types of the events in progress (the overlay's banner)."""
        out = []
        if self._glance is not None and self._glance.end_s - self._glance.start_s >= self.long_s - EPS_S:
            out.append(LONG)
        if self._short is not None:
            out.append(SHORT)
        if self._hidden is not None and self._hidden.end_s - self._hidden.start_s >= self.not_visible_s - EPS_S:
            out.append(NOT_VISIBLE)
        return out

    def finish(self) -> list[dict[str, Any]]:
        """Close what is open at the end of the video; every event, by start time."""
        if self._glance is not None:
            self._close_glance()
        if self._hidden is not None:
            self._close_hidden()
        if self._short is not None:
            self._close_short()
        return sorted(self.events, key=lambda e: (e["start_s"], e["type"]))

    @staticmethod
    def _event(
        kind: str, start_s: float, end_s: float, yaw: float | None, off_road_s: float | None, track_id: int | None
    ) -> dict[str, Any]:
        return {
            "type": kind,
            "start_s": round(start_s, 3),
            "end_s": round(end_s, 3),
            "duration_s": round(end_s - start_s, 3),
            "track_id": track_id,
            "max_abs_yaw_deg": None if yaw is None else round(yaw, 1),
            "off_road_s": None if off_road_s is None else round(off_road_s, 3),
        }
