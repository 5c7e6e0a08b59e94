"""The autoscaling policy: a pure function of (config, observation, state) -> (decision, state).

No I/O and no clock reads: the observation carries the time (`now_s`, seconds since the epoch, UTC) and the
state carries what the policy remembers between calls (its last scale-out, last scale-in, and since when the
queue has been empty). The local supervisor, the KEDA values of the Helm chart and `framequeue simulate` all
use this one function; observing the queue and acting on the decision live elsewhere.

Rules, in order (each decision names the one that set it in `reason`):

1. **target tracking**: desired = ceil(outstanding / target_jobs_per_worker), where outstanding = waiting +
   in-flight jobs (in-flight counts: minutes-long jobs must keep their workers);
2. **tolerance**: while current workers are within `tolerance` of that (|ratio - 1| <= tolerance), keep them;
3. **busy workers stay**: never below the workers needed for the in-flight jobs;
4. **idle to zero**: with nothing outstanding, keep one worker until the queue has been empty `idle_to_zero_s`;
5. **hour-of-day floors and min_workers**: never below the floor of the local hour (`tz` says which);
6. **max_workers** caps everything, floors included;
7. **activation**: from zero workers, outstanding > activation_jobs scales out at once, cooldown or not;
8. **cooldowns**: a scale-out waits `scale_out_cooldown_s` after the previous scale-out; a scale-in waits
   `scale_in_cooldown_s` after any change. Raising capacity to a floor is never held back.

Inference endpoints follow the workers: ceil(workers / workers_per_endpoint), 0 with 0 workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo

__all__ = ["Decision", "HourFloor", "Observation", "PolicyConfig", "PolicyState", "decide", "endpoints_for"]


@dataclass(frozen=True)
class HourFloor:
    """At least `workers` workers from `start_hour` (inclusive) to `end_hour` (exclusive), local time.

    end_hour <= start_hour wraps past midnight (22 -> 6); start_hour == end_hour means all day.
    """

    start_hour: int
    end_hour: int
    workers: int

    def __post_init__(self) -> None:
        if not (0 <= self.start_hour <= 23 and 0 <= self.end_hour <= 24):
            raise ValueError(f"hours must be within 0..24: {self.start_hour}..{self.end_hour}")
        if self.workers < 0:
            raise ValueError("a floor's workers must be >= 0")

    def covers(self, hour: int) -> bool:
        if self.start_hour < self.end_hour:
            return self.start_hour <= hour < self.end_hour
        return hour >= self.start_hour or hour < self.end_hour


@dataclass(frozen=True)
class PolicyConfig:
    #: outstanding (waiting + in-flight) jobs one worker should carry; 1.0 = a worker per job, no queueing
    target_jobs_per_worker: float = 1.0
    #: relative band around the target inside which the current count is kept (HPA's 10 %)
    tolerance: float = 0.1
    min_workers: int = 0
    max_workers: int = 50
    #: jobs one worker runs at once (FQ_WORKERS=1 per pod: 1)
    jobs_per_worker: int = 1
    #: seconds after a scale-out before the next scale-out
    scale_out_cooldown_s: float = 30.0
    #: seconds after any change before a scale-in
    scale_in_cooldown_s: float = 300.0
    #: seconds with nothing outstanding before scaling to zero (when no floor holds capacity)
    idle_to_zero_s: float = 600.0
    #: a zero-worker fleet wakes when outstanding > this (KEDA's activation value; default 0: one job wakes it)
    activation_jobs: int = 0
    #: hour-of-day floors, in the local time of `tz`
    floors: tuple[HourFloor, ...] = ()
    #: the time zone the floors' hours are in (a fixed offset or a ZoneInfo built at the edge)
    tz: tzinfo = UTC
    #: worker pods per inference endpoint (KEDA kubernetes-workload `value`)
    workers_per_endpoint: float = 4.0

    def __post_init__(self) -> None:
        if self.target_jobs_per_worker <= 0 or self.workers_per_endpoint <= 0 or self.jobs_per_worker < 1:
            raise ValueError("targets, jobs_per_worker and workers_per_endpoint must be positive")
        if not 0 <= self.min_workers <= self.max_workers:
            raise ValueError(f"need 0 <= min_workers <= max_workers: {self.min_workers}, {self.max_workers}")
        if self.tolerance < 0:
            raise ValueError("tolerance must be >= 0")


@dataclass(frozen=True)
class Observation:
    #: seconds since the epoch (UTC), from the caller's clock (or the simulator's)
    now_s: float
    #: jobs waiting in the queue (ready + delayed)
    waiting: int
    #: jobs received and not yet acked
    in_flight: int
    #: workers that exist now (running or starting)
    current_workers: int

    @property
    def outstanding(self) -> int:
        return self.waiting + self.in_flight


@dataclass(frozen=True)
class PolicyState:
    #: when the policy last scaled out / in (None: never)
    last_scale_out_s: float | None = None
    last_scale_in_s: float | None = None
    #: since when nothing has been outstanding (None: work is outstanding)
    idle_since_s: float | None = None


@dataclass(frozen=True)
class Decision:
    workers: int
    #: inference endpoints: ceil(workers / workers_per_endpoint), 0 with no workers
    endpoints: int
    #: which rule decided, for logs and the supervisor's status
    reason: str = field(compare=False)


def endpoints_for(workers: int, workers_per_endpoint: float) -> int:
    return 0 if workers <= 0 else math.ceil(workers / workers_per_endpoint - 1e-9)


def floor_at(config: PolicyConfig, now_s: float) -> int:
    """min_workers or the largest hour floor covering the local hour of now_s, capped at max_workers."""
    hour = datetime.fromtimestamp(now_s, tz=config.tz).hour
    floors = [f.workers for f in config.floors if f.covers(hour)]
    return min(max([config.min_workers, *floors]), config.max_workers)


def _since(now_s: float, then_s: float | None) -> float:
    return math.inf if then_s is None else now_s - then_s


def decide(config: PolicyConfig, obs: Observation, state: PolicyState) -> tuple[Decision, PolicyState]:
    """The desired worker and endpoint counts for this observation, and the state to pass next time."""
    now, current, outstanding = obs.now_s, obs.current_workers, obs.outstanding
    idle_since = (state.idle_since_s if state.idle_since_s is not None else now) if outstanding == 0 else None
    state = replace(state, idle_since_s=idle_since)
    floor = floor_at(config, now)

    wanted = math.ceil(outstanding / config.target_jobs_per_worker - 1e-9)
    reason = f"target: {outstanding} outstanding / {config.target_jobs_per_worker:g} per worker"
    if current > 0 and outstanding > 0:
        ratio = outstanding / (current * config.target_jobs_per_worker)
        if abs(ratio - 1.0) <= config.tolerance + 1e-9:
            wanted, reason = current, f"within tolerance ({ratio:.2f} of target)"
    busy = math.ceil(obs.in_flight / config.jobs_per_worker)
    if wanted < busy:
        wanted, reason = busy, f"busy: {obs.in_flight} in flight"
    if outstanding == 0 and current > 0 and _since(now, idle_since) < config.idle_to_zero_s:
        wanted, reason = max(wanted, 1), "idle, not yet for idle_to_zero_s"
    if wanted < floor:
        wanted, reason = floor, f"floor: {floor} workers at this hour"
    if wanted > config.max_workers:
        wanted, reason = config.max_workers, f"max: capped at {config.max_workers}"

    if wanted > current:
        if current == 0 and outstanding > config.activation_jobs:
            reason = f"activation: {outstanding} outstanding at zero workers; {reason}"
        elif wanted <= floor:
            pass  # a floor is never held back by a cooldown
        elif _since(now, state.last_scale_out_s) < config.scale_out_cooldown_s:
            wanted = max(current, floor)
            reason = f"scale-out cooldown ({config.scale_out_cooldown_s:g} s)"
        if current == 0 and outstanding <= config.activation_jobs and wanted > floor:
            wanted, reason = max(floor, 0), f"not active: {outstanding} <= activation {config.activation_jobs}"
        if wanted > current:
            state = replace(state, last_scale_out_s=now)
    elif wanted < current:
        last_change = max(state.last_scale_out_s or -math.inf, state.last_scale_in_s or -math.inf)
        if now - last_change < config.scale_in_cooldown_s:
            wanted, reason = current, f"scale-in cooldown ({config.scale_in_cooldown_s:g} s)"
        else:
            state = replace(state, last_scale_in_s=now)
    else:
        reason = f"steady; {reason}"
    return Decision(wanted, endpoints_for(wanted, config.workers_per_endpoint), reason), state
