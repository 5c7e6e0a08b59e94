"""The policies the simulator compares, as controllers: View -> desired workers.

Each baseline models how its real counterpart reacts, with its documented defaults:

- `FixedPeak`: provisioned for the busiest hour all day long.
- `CpuUtilisation`: the HPA on CPU: desired = ceil(ready x utilisation / target), utilisation averaged over
  a 60 s metrics window (metrics-server), 10 % tolerance, 5 min scale-down stabilisation, min 1. Utilisation
  cannot exceed 100 %, so it grows at most 1/target per step however long the queue: it lags the backlog.
- `BacklogTracking`: SageMaker asynchronous inference's recipe: target tracking on
  ApproximateBacklogSizePerInstance (waiting + in-flight per instance) with CloudWatch alarms (scale-out after
  3 one-minute datapoints, scale-in after 15), cooldowns 300 s out and 600 s in, min 0, and a step policy on
  HasBacklogWithoutCapacity that adds one instance from zero.
- `ScheduledReactive`: the fleet's own practice: a scheduled floor at peak capacity over the busy hours, and
  a KEDA/HPA reaction on backlog per worker outside them (min 1).
- `FramequeuePolicy`: `framequeue.scaling.policy.decide`, the function the supervisor and the chart use.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from framequeue.scaling.policy import Observation, PolicyConfig, PolicyState, decide
from framequeue.scaling.simulate import View

__all__ = [
    "SIM_EPOCH_S",
    "BacklogTracking",
    "CpuUtilisation",
    "FixedPeak",
    "FramequeuePolicy",
    "ScheduledReactive",
]

#: the simulated day's local midnight, as epoch seconds (policy floors are evaluated in UTC here)
SIM_EPOCH_S = datetime(2026, 1, 5, tzinfo=UTC).timestamp()


class _Window:
    """Mean of the values seen over the last window_s."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._points: deque[tuple[float, float]] = deque()

    def add(self, t_s: float, value: float) -> float:
        self._points.append((t_s, value))
        while self._points[0][0] <= t_s - self.window_s:
            self._points.popleft()
        return sum(v for _, v in self._points) / len(self._points)


@dataclass
class FixedPeak:
    workers: int
    name: str = "fixed peak"

    def desired_workers(self, view: View) -> int:
        return self.workers


@dataclass
class CpuUtilisation:
    max_workers: int
    target_utilisation: float = 0.6
    min_workers: int = 1
    window_s: float = 60.0
    stabilisation_s: float = 300.0
    name: str = "CPU utilisation (HPA)"
    _util: _Window = field(init=False)
    _recs: deque[tuple[float, int]] = field(init=False, default_factory=deque)

    def __post_init__(self) -> None:
        self._util = _Window(self.window_s)

    def desired_workers(self, view: View) -> int:
        util = self._util.add(view.t_s, view.in_flight / view.ready_workers if view.ready_workers else 0.0)
        current = max(view.workers, 1)
        ratio = util / self.target_utilisation
        rec = current if abs(ratio - 1) <= 0.1 else math.ceil(max(view.ready_workers, 1) * ratio)
        rec = min(max(rec, self.min_workers), self.max_workers)
        self._recs.append((view.t_s, rec))
        while self._recs[0][0] < view.t_s - self.stabilisation_s:
            self._recs.popleft()
        # scale-down stabilisation: the highest recommendation of the window
        return max(r for _, r in self._recs)


@dataclass
class BacklogTracking:
    max_workers: int
    #: AWS's example: 5 per instance; with 4 workers per GPU instance, 1.25 per worker
    target_per_worker: float = 1.25
    min_workers: int = 0
    scale_out_cooldown_s: float = 300.0
    scale_in_cooldown_s: float = 600.0
    name: str = "backlog tracking (SageMaker)"
    _out: _Window = field(init=False)
    _in: _Window = field(init=False)
    #: since when backlog has waited with no instance (HasBacklogWithoutCapacity, a 1-minute alarm)
    _empty_since_s: float | None = None
    _last_out_s: float = -math.inf
    _last_in_s: float = -math.inf

    def __post_init__(self) -> None:
        self._out, self._in = _Window(180.0), _Window(900.0)

    def desired_workers(self, view: View) -> int:
        t, current = view.t_s, view.workers
        backlog = view.waiting + view.in_flight
        per_worker = backlog / current if current else float(backlog)
        out_metric, in_metric = self._out.add(t, per_worker), self._in.add(t, per_worker)
        if current == 0:
            if backlog == 0:
                self._empty_since_s = None
                return 0
            self._empty_since_s = t if self._empty_since_s is None else self._empty_since_s
            return 1 if t - self._empty_since_s >= 60.0 else 0
        self._empty_since_s = None
        desired = current
        if out_metric > self.target_per_worker and t - self._last_out_s >= self.scale_out_cooldown_s:
            desired = math.ceil(current * out_metric / self.target_per_worker)
            self._last_out_s = t
        elif (
            in_metric < 0.9 * self.target_per_worker
            and t - max(self._last_in_s, self._last_out_s) >= self.scale_in_cooldown_s
        ):
            desired = math.ceil(current * in_metric / self.target_per_worker)
            self._last_in_s = t
        return min(max(desired, self.min_workers), self.max_workers)


@dataclass
class ScheduledReactive:
    peak_workers: int
    max_workers: int
    start_h: float = 7.5
    end_h: float = 17.0
    target_per_worker: float = 2.0
    min_workers: int = 1
    name: str = "scheduled + reactive"
    _recs: deque[tuple[float, int]] = field(init=False, default_factory=deque)

    def desired_workers(self, view: View) -> int:
        hour = (view.t_s / 3600.0) % 24.0
        floor = self.peak_workers if self.start_h <= hour < self.end_h else self.min_workers
        rec = math.ceil((view.waiting + view.in_flight) / self.target_per_worker)
        self._recs.append((view.t_s, rec))
        while self._recs[0][0] < view.t_s - 300.0:
            self._recs.popleft()
        return min(max(max(r for _, r in self._recs), floor), self.max_workers)


@dataclass
class FramequeuePolicy:
    config: PolicyConfig
    name: str = "framequeue policy"
    state: PolicyState = field(default_factory=PolicyState)

    def desired_workers(self, view: View) -> int:
        obs = Observation(SIM_EPOCH_S + view.t_s, view.waiting, view.in_flight, view.workers)
        decision, self.state = decide(self.config, obs, self.state)
        return decision.workers
