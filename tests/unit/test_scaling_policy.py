"""The autoscaling policy, rule by rule; the clock is a number in the observation, nothing sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from framequeue.scaling.policy import (
    HourFloor,
    Observation,
    PolicyConfig,
    PolicyState,
    decide,
    endpoints_for,
)

#: 2026-01-05 00:00 UTC, a Monday
MIDNIGHT_S = datetime(2026, 1, 5, tzinfo=UTC).timestamp()
CFG = PolicyConfig(
    target_jobs_per_worker=1.0,
    tolerance=0.1,
    max_workers=20,
    scale_out_cooldown_s=30,
    scale_in_cooldown_s=300,
    idle_to_zero_s=600,
)


def obs(t: float, waiting: int, in_flight: int, current: int) -> Observation:
    return Observation(now_s=MIDNIGHT_S + t, waiting=waiting, in_flight=in_flight, current_workers=current)


def test_target_tracking_counts_waiting_plus_in_flight() -> None:
    d, state = decide(CFG, obs(0, 3, 4, 2), PolicyState())
    assert (d.workers, d.endpoints) == (7, 2)
    assert d.reason.startswith("target")
    assert state.last_scale_out_s == MIDNIGHT_S


def test_target_per_worker_rounds_up() -> None:
    cfg = PolicyConfig(target_jobs_per_worker=2.0, max_workers=20)
    assert decide(cfg, obs(0, 5, 0, 1), PolicyState())[0].workers == 3


@pytest.mark.parametrize(("outstanding", "kept"), [(11, True), (9, True), (12, False), (8, False)])
def test_tolerance_band(outstanding: int, kept: bool) -> None:
    state = PolicyState(last_scale_out_s=MIDNIGHT_S - 1000, last_scale_in_s=MIDNIGHT_S - 1000)
    d, _ = decide(CFG, obs(0, outstanding - 2, 2, 10), state)
    assert (d.workers == 10) is kept
    if kept:
        assert "tolerance" in d.reason
    else:
        assert d.workers == outstanding


def test_scale_out_cooldown_boundary() -> None:
    state = PolicyState(last_scale_out_s=MIDNIGHT_S)
    held, _ = decide(CFG, obs(29.9, 10, 2, 2), state)
    assert held.workers == 2 and "cooldown" in held.reason
    allowed, new_state = decide(CFG, obs(30, 10, 2, 2), state)
    assert allowed.workers == 12
    assert new_state.last_scale_out_s == MIDNIGHT_S + 30


def test_scale_in_cooldown_counts_from_any_change() -> None:
    state = PolicyState(last_scale_out_s=MIDNIGHT_S, last_scale_in_s=MIDNIGHT_S - 5000)
    held, _ = decide(CFG, obs(299, 1, 1, 8), state)
    assert held.workers == 8 and "scale-in cooldown" in held.reason
    allowed, new_state = decide(CFG, obs(300, 1, 1, 8), state)
    assert allowed.workers == 2
    assert new_state.last_scale_in_s == MIDNIGHT_S + 300


def test_never_below_busy_workers() -> None:
    cfg = PolicyConfig(target_jobs_per_worker=4.0, max_workers=20, scale_in_cooldown_s=0)
    d, _ = decide(cfg, obs(0, 0, 6, 6), PolicyState())
    assert d.workers == 6 and "busy" in d.reason


def test_activation_from_zero_ignores_cooldown() -> None:
    state = PolicyState(last_scale_out_s=MIDNIGHT_S - 1)
    d, new_state = decide(CFG, obs(0, 1, 0, 0), state)
    assert (d.workers, d.endpoints) == (1, 1)
    assert d.reason.startswith("activation")
    assert new_state.last_scale_out_s == MIDNIGHT_S


def test_activation_threshold() -> None:
    cfg = PolicyConfig(activation_jobs=2, max_workers=20)
    assert decide(cfg, obs(0, 2, 0, 0), PolicyState())[0].workers == 0
    assert decide(cfg, obs(0, 3, 0, 0), PolicyState())[0].workers == 3


def test_scale_to_zero_only_after_idle_period() -> None:
    state = PolicyState(last_scale_out_s=MIDNIGHT_S - 5000)
    d, state = decide(CFG, obs(0, 0, 0, 3), state)
    assert d.workers == 1  # idle just began: one worker stays warm
    assert state.idle_since_s == MIDNIGHT_S
    d, state = decide(CFG, obs(599, 0, 0, 1), state)
    assert d.workers == 1 and "idle" in d.reason
    d, state = decide(CFG, obs(600, 0, 0, 1), state)
    assert (d.workers, d.endpoints) == (0, 0)
    # one job resets the idle clock
    _, state = decide(CFG, obs(601, 1, 0, 0), state)
    assert state.idle_since_s is None


def test_scale_to_zero_waits_for_scale_in_cooldown() -> None:
    state = PolicyState(last_scale_in_s=MIDNIGHT_S + 500, idle_since_s=MIDNIGHT_S)
    d, _ = decide(CFG, obs(700, 0, 0, 1), state)
    assert d.workers == 1 and "cooldown" in d.reason


def test_hour_floor_in_utc() -> None:
    cfg = PolicyConfig(floors=(HourFloor(8, 17, 6),), max_workers=20)
    assert decide(cfg, obs(8 * 3600 - 1, 0, 0, 0), PolicyState())[0].workers == 0
    d, _ = decide(cfg, obs(8 * 3600, 0, 0, 0), PolicyState())
    assert d.workers == 6 and d.reason.startswith("floor")
    # the floor is never held back by the scale-out cooldown
    d, _ = decide(cfg, obs(9 * 3600, 0, 0, 2), PolicyState(last_scale_out_s=MIDNIGHT_S + 9 * 3600))
    assert d.workers == 6
    assert decide(cfg, obs(17 * 3600, 0, 1, 6), PolicyState())[0].workers == 1


def test_hour_floor_uses_the_configured_offset() -> None:
    minus5 = timezone(timedelta(hours=-5))
    cfg = PolicyConfig(floors=(HourFloor(8, 17, 4),), tz=minus5, max_workers=20)
    # 13:00 UTC is 08:00 at UTC-5
    assert decide(cfg, obs(12 * 3600 + 3599, 0, 0, 0), PolicyState())[0].workers == 0
    assert decide(cfg, obs(13 * 3600, 0, 0, 0), PolicyState())[0].workers == 4


def test_hour_floor_follows_daylight_saving_with_a_zone() -> None:
    cfg = PolicyConfig(floors=(HourFloor(8, 9, 3),), tz=ZoneInfo("Europe/Berlin"), max_workers=20)
    winter = datetime(2026, 1, 5, 7, 30, tzinfo=UTC).timestamp()  # 08:30 CET
    summer = datetime(2026, 7, 6, 6, 30, tzinfo=UTC).timestamp()  # 08:30 CEST
    for t in (winter, summer):
        assert decide(cfg, Observation(t, 0, 0, 0), PolicyState())[0].workers == 3
    assert decide(cfg, Observation(winter - 3600, 0, 0, 0), PolicyState())[0].workers == 0


def test_floor_wraps_past_midnight() -> None:
    f = HourFloor(22, 6, 2)
    assert [h for h in range(24) if f.covers(h)] == [0, 1, 2, 3, 4, 5, 22, 23]
    assert all(HourFloor(0, 24, 1).covers(h) for h in range(24))


def test_max_caps_target_and_floors() -> None:
    cfg = PolicyConfig(max_workers=5, floors=(HourFloor(0, 24, 9),))
    d, _ = decide(cfg, obs(0, 40, 0, 2), PolicyState())
    assert d.workers == 5 and d.reason.startswith("max")
    assert decide(cfg, obs(0, 0, 0, 0), PolicyState())[0].workers == 5


def test_min_workers_is_a_floor() -> None:
    cfg = PolicyConfig(min_workers=2, max_workers=10, idle_to_zero_s=0, scale_in_cooldown_s=0)
    assert decide(cfg, obs(0, 0, 0, 5), PolicyState())[0].workers == 2


@pytest.mark.parametrize(
    ("workers", "ratio", "endpoints"),
    [(0, 4, 0), (1, 4, 1), (4, 4, 1), (5, 4, 2), (8, 4, 2), (9, 4, 3), (3, 1.5, 2), (6, 1.5, 4)],
)
def test_endpoint_ratio_rounds_up(workers: int, ratio: float, endpoints: int) -> None:
    assert endpoints_for(workers, ratio) == endpoints


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        PolicyConfig(min_workers=3, max_workers=2)
    with pytest.raises(ValueError):
        PolicyConfig(target_jobs_per_worker=0)
    with pytest.raises(ValueError):
        HourFloor(25, 3, 1)


def test_decision_is_pure() -> None:
    args = (CFG, obs(0, 5, 1, 2), PolicyState())
    assert decide(*args) == decide(*args)
