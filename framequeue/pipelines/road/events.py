"""Event rules over per-frame values: `following_too_close` and `forward_collision_warning`.

Frames are fed in time order; each covers [t_s, t_s + period_s). A rule is an `IntervalRule`: its entry
condition must hold for `min_duration_s` (runs of frames without it of at most `bridge_s` are bridged) for
the event to start, at the first frame of that run; the event then lasts until its clear condition has
held for `clear_s`, and ends where that clear run began (or at the end of the video). Pure: no clock, no I/O.

- following_too_close: time gap < max_time_gap_s at speed > min_speed_mps, held min_duration_s; dropouts
  up to 0.5 s bridged; ends once the gap is above max_time_gap_s + 0.1 s (or unknown: lead lost, speed
  unknown or below the minimum) for 1 s.
- forward_collision_warning: TTC < max_ttc_s held min_duration_s (0.5 s); dropouts up to 0.2 s bridged;
  ends once TTC is at or above it (or unknown) for 0.5 s.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

#: tolerance of time comparisons, seconds (frame times are sums of floats)
EPS_S: Final = 1e-6
FOLLOWING: Final = "following_too_close"
COLLISION: Final = "forward_collision_warning"
#: the following rule's exit hysteresis above its threshold, seconds of time gap
FOLLOWING_CLEAR_MARGIN_S: Final = 0.1
FOLLOWING_BRIDGE_S: Final = 0.5
FOLLOWING_CLEAR_S: Final = 1.0
COLLISION_BRIDGE_S: Final = 0.2
COLLISION_CLEAR_S: Final = 0.5


@dataclass(frozen=True)
class IntervalRule:
    #: how long the entry condition must hold (bridged dropouts included) before the event starts, seconds
    min_duration_s: float
    #: longest run of frames without the entry condition that does not break a run, seconds
    bridge_s: float
    #: how long the clear condition must hold to end an active event, seconds
    clear_s: float


@dataclass(frozen=True)
class FrameValues:
    """What the rules read of one frame."""

    t_s: float
    lead_track_id: int | None
    distance_m: float | None
    time_gap_s: float | None
    ttc_s: float | None
    speed_mps: float | None


@dataclass
class _Stats:
    """Running numbers of the frames of an interval."""

    min_gap_s: float = math.inf
    gap_sum_s: float = 0.0
    gap_frames: int = 0
    min_ttc_s: float = math.inf
    min_distance_m: float = math.inf
    leads: Counter[int] = field(default_factory=Counter)

    def add(self, v: FrameValues) -> None:
        if v.time_gap_s is not None:
            self.min_gap_s = min(self.min_gap_s, v.time_gap_s)
            self.gap_sum_s += v.time_gap_s
            self.gap_frames += 1
        if v.ttc_s is not None:
            self.min_ttc_s = min(self.min_ttc_s, v.ttc_s)
        if v.distance_m is not None:
            self.min_distance_m = min(self.min_distance_m, v.distance_m)
        if v.lead_track_id is not None:
            self.leads[v.lead_track_id] += 1

    def merge(self, other: _Stats) -> None:
        self.min_gap_s = min(self.min_gap_s, other.min_gap_s)
        self.gap_sum_s += other.gap_sum_s
        self.gap_frames += other.gap_frames
        self.min_ttc_s = min(self.min_ttc_s, other.min_ttc_s)
        self.min_distance_m = min(self.min_distance_m, other.min_distance_m)
        self.leads.update(other.leads)


def _finite(value: float, digits: int) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


class IntervalTracker:
    """One rule's state over a video: feed every frame, collect the events it closes."""

    def __init__(self, event_type: str, rule: IntervalRule, period_s: float) -> None:
        self.event_type = event_type
        self.rule = rule
        self.period_s = period_s
        self._start_s: float | None = None
        self._active = False
        #: start of the current run of frames without the entry condition (candidate) or with the clear
        #: condition (active); None while the run is not broken
        self._break_s: float | None = None
        self._stats = _Stats()
        #: numbers of the frames since _break_s, kept apart until the run resumes
        self._pending = _Stats()

    @property
    def active(self) -> bool:
        return self._active

    def update(self, v: FrameValues, on: bool, clear: bool) -> dict[str, Any] | None:
        """Feed one frame with its entry (`on`) and exit (`clear`) conditions; the event it ends, if any."""
        end_s = v.t_s + self.period_s
        if self._active:
            if not clear:
                self._resume(v)
                return None
            if self._break_s is None:
                self._break_s = v.t_s
            self._pending.add(v)
            if end_s - self._break_s >= self.rule.clear_s - EPS_S:
                return self._close(self._break_s)
            return None
        if on:
            if self._start_s is None:
                self._start_s, self._stats = v.t_s, _Stats()
            self._resume(v)
            if end_s - self._start_s >= self.rule.min_duration_s - EPS_S:
                self._active = True
            return None
        if self._start_s is not None:
            if self._break_s is None:
                self._break_s = v.t_s
            self._pending.add(v)
            if end_s - self._break_s > self.rule.bridge_s + EPS_S:
                self._reset()
        return None

    def finish(self, video_end_s: float) -> dict[str, Any] | None:
        """The event still open when the video ends, ended there (or where its clear run began)."""
        if not self._active:
            self._reset()
            return None
        return self._close(self._break_s if self._break_s is not None else video_end_s)

    def _resume(self, v: FrameValues) -> None:
        if self._break_s is not None:
            self._stats.merge(self._pending)
            self._pending, self._break_s = _Stats(), None
        self._stats.add(v)

    def _reset(self) -> None:
        self._start_s, self._active, self._break_s = None, False, None
        self._stats, self._pending = _Stats(), _Stats()

    def _close(self, end_s: float) -> dict[str, Any]:
        assert self._start_s is not None
        s = self._stats
        lead = min(s.leads.items(), key=lambda kv: (-kv[1], kv[0]))[0] if s.leads else None
        event = {
            "type": self.event_type,
            "start_s": round(self._start_s, 3),
            "end_s": round(end_s, 3),
            "duration_s": round(end_s - self._start_s, 3),
            "lead_track_id": lead,
            "lead_track_ids": sorted(s.leads),
            "min_time_gap_s": _finite(s.min_gap_s, 3),
            "mean_time_gap_s": round(s.gap_sum_s / s.gap_frames, 3) if s.gap_frames else None,
            "min_ttc_s": _finite(s.min_ttc_s, 3),
            "min_distance_m": _finite(s.min_distance_m, 2),
        }
        self._reset()
        return event


class RoadEvents:
    """Both road rules over one video, with the job's thresholds."""

    def __init__(self, following: Mapping[str, Any], collision: Mapping[str, float], period_s: float) -> None:
        self.max_gap_s = float(following["max_time_gap_s"])
        self.min_speed_mps = float(following["min_speed_mps"])
        self.max_ttc_s = float(collision["max_ttc_s"])
        self.following = IntervalTracker(
            FOLLOWING, IntervalRule(float(following["min_duration_s"]), FOLLOWING_BRIDGE_S, FOLLOWING_CLEAR_S), period_s
        )
        self.collision = IntervalTracker(
            COLLISION, IntervalRule(float(collision["min_duration_s"]), COLLISION_BRIDGE_S, COLLISION_CLEAR_S), period_s
        )
        self.events: list[dict[str, Any]] = []

    def update(self, v: FrameValues) -> list[dict[str, Any]]:
        """Feed one frame; the events it ended (also appended to `events`)."""
        moving = v.speed_mps is not None and v.speed_mps > self.min_speed_mps
        gap = v.time_gap_s
        close = moving and gap is not None and gap < self.max_gap_s
        clear = not (moving and gap is not None and gap <= self.max_gap_s + FOLLOWING_CLEAR_MARGIN_S)
        closing = v.ttc_s is not None and v.ttc_s < self.max_ttc_s
        ended = [
            e
            for e in (self.following.update(v, close, clear), self.collision.update(v, closing, not closing))
            if e is not None
        ]
        self.events.extend(ended)
        return ended

    def active(self) -> list[str]:
        """Types of the events in progress (for the overlay's banner)."""
        return [t.event_type for t in (self.following, self.collision) if t.active]

    def finish(self, video_end_s: float) -> list[dict[str, Any]]:
        """Close what is open; every event of the video, by start time."""
        for tracker in (self.following, self.collision):
            event = tracker.finish(video_end_s)
            if event is not None:
                self.events.append(event)
        return sorted(self.events, key=lambda e: (e["start_s"], e["type"]))
