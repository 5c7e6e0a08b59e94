"""The road event rules at their exact boundaries: durations, bridged dropouts, exit hysteresis, speed gate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from framequeue.pipelines.road.events import COLLISION, FOLLOWING, FrameValues, RoadEvents
from framequeue.pipelines.road.params import COLLISION_DEFAULTS, FOLLOWING_PROFILES

FPS = 20
PERIOD_S = 1 / FPS
FLEET = FOLLOWING_PROFILES["fleet"]  # 0.7 s held 15 s above 15.6 m/s

#: (seconds, time gap or None, speed, TTC or None) pieces of a drive
Piece = tuple[float, float | None, float | None, float | None]


def drive(pieces: Sequence[Piece], following: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Feed the pieces frame by frame at 20 fps; the events of the whole drive."""
    rules = RoadEvents({"profile": "fleet", **FLEET, **(following or {})}, COLLISION_DEFAULTS, PERIOD_S)
    k = 0
    for seconds, gap, speed, ttc in pieces:
        for _ in range(round(seconds * FPS)):
            t = k / FPS
            distance = None if gap is None or speed is None else gap * speed
            rules.update(FrameValues(t, 7 if gap is not None else None, distance, gap, ttc, speed))
            k += 1
    return rules.finish(k / FPS)


def following(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == FOLLOWING]


CLEAR = (3.0, 1.5, 25.0, None)


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        ([(15.0, 0.69, 25.0, None), CLEAR], [(0.0, 15.0)]),
        ([(14.9, 0.69, 25.0, None), CLEAR], []),
        ([(20.0, 0.71, 25.0, None), CLEAR], []),
        ([(20.0, 0.70, 25.0, None), CLEAR], []),  # "below" the threshold: 0.70 is not
        # a 0.4 s dropout (gap back to normal) inside the run is bridged and counts toward the 15 s
        ([(8.0, 0.6, 25.0, None), (0.4, 1.5, 25.0, None), (8.0, 0.6, 25.0, None), CLEAR], [(0.0, 16.4)]),
        ([(8.0, 0.6, 25.0, None), (0.5, 1.5, 25.0, None), (8.0, 0.6, 25.0, None), CLEAR], [(0.0, 16.5)]),
        ([(8.0, 0.6, 25.0, None), (0.6, 1.5, 25.0, None), (8.0, 0.6, 25.0, None), CLEAR], []),
        # the lead lost for 0.4 s is a dropout like any other
        ([(8.0, 0.6, 25.0, None), (0.4, None, 25.0, None), (8.0, 0.6, 25.0, None), CLEAR], [(0.0, 16.4)]),
        # the speed gate: at 15.6 m/s or slower nothing, whatever the gap
        ([(20.0, 0.5, 15.6, None), CLEAR], []),
        ([(20.0, 0.5, None, None), CLEAR], []),
        ([(20.0, 0.5, 15.7, None), CLEAR], [(0.0, 20.0)]),
    ],
)
def test_following_too_close_boundaries(pieces: list[Piece], expected: list[tuple[float, float]]) -> None:
    events = following(drive(pieces))
    assert [(e["start_s"], e["end_s"]) for e in events] == [pytest.approx(x) for x in expected]


def test_event_starts_where_the_run_began_and_ends_after_the_clear_second() -> None:
    pieces: list[Piece] = [(5.0, 1.5, 25.0, None), (16.0, 0.6, 25.0, None),
                           (3.0, 0.75, 25.0, None),  # above 0.7 but not above 0.8: still following too close
                           (0.9, 0.85, 25.0, None), (0.5, 0.75, 25.0, None),  # clear for 0.9 s only
                           (2.0, 0.85, 25.0, None)]
    (event,) = following(drive(pieces))
    assert event["start_s"] == pytest.approx(5.0)
    # the clear run that lasted 1 s began at 5 + 16 + 3 + 0.9 + 0.5 = 25.4 s
    assert event["end_s"] == pytest.approx(25.4)
    assert event["min_time_gap_s"] == pytest.approx(0.6)
    assert event["lead_track_id"] == 7 and event["lead_track_ids"] == [7]
    frames = 16 * FPS * [0.6] + 3 * FPS * [0.75] + int(0.9 * FPS) * [0.85] + int(0.5 * FPS) * [0.75]
    assert event["mean_time_gap_s"] == pytest.approx(sum(frames) / len(frames), abs=1e-3)


@pytest.mark.parametrize(("lost_s", "events"), [(0.95, 1), (1.0, 2)])
def test_lead_lost_over_a_second_ends_the_event(lost_s: float, events: int) -> None:
    pieces: list[Piece] = [(16.0, 0.6, 25.0, None), (lost_s, None, 25.0, None), (16.0, 0.6, 25.0, None), CLEAR]
    found = following(drive(pieces))
    assert len(found) == events
    if events == 2:
        assert found[0]["end_s"] == pytest.approx(16.0)
        assert found[1]["start_s"] == pytest.approx(17.0)


def test_an_event_open_at_the_end_of_the_video_ends_there() -> None:
    (event,) = following(drive([(2.0, 1.5, 25.0, None), (16.0, 0.5, 25.0, None)]))
    assert (event["start_s"], event["end_s"]) == (pytest.approx(2.0), pytest.approx(18.0))


def test_two_second_rule_profile() -> None:
    rule = FOLLOWING_PROFILES["two_second_rule"]
    assert rule == {"max_time_gap_s": 2.0, "min_duration_s": 3.0, "min_speed_mps": 11.0}
    pieces: list[Piece] = [(3.0, 1.9, 12.0, None), (2.0, 2.5, 12.0, None)]
    (event,) = following(drive(pieces, {"profile": "two_second_rule", **rule}))
    assert (event["start_s"], event["end_s"]) == (pytest.approx(0.0), pytest.approx(3.0))
    assert following(drive([(2.95, 1.9, 12.0, None), (2.0, 2.5, 12.0, None)], rule)) == []


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        ([(1.0, 1.5, 25.0, 3.0), (0.5, 1.5, 25.0, 2.4), (2.0, 1.5, 25.0, None)], [(1.0, 1.5)]),
        ([(1.0, 1.5, 25.0, 3.0), (0.45, 1.5, 25.0, 2.4), (2.0, 1.5, 25.0, None)], []),
        ([(1.0, 1.5, 25.0, 3.0), (0.5, 1.5, 25.0, 2.5), (2.0, 1.5, 25.0, None)], []),
        # a 0.2 s gap in the TTC is bridged; the warning then lasts until TTC has been clear for 0.5 s
        ([(0.3, 1.5, 25.0, 2.0), (0.2, 1.5, 25.0, None), (0.3, 1.5, 25.0, 2.0), (0.4, 1.5, 25.0, 4.0),
          (0.3, 1.5, 25.0, 2.0), (1.0, 1.5, 25.0, 4.0)], [(0.0, 1.5)]),
    ],
)
def test_forward_collision_warning(pieces: list[Piece], expected: list[tuple[float, float]]) -> None:
    events = [e for e in drive(pieces) if e["type"] == COLLISION]
    assert [(e["start_s"], e["end_s"]) for e in events] == [pytest.approx(x) for x in expected]
    for e in events:
        assert e["min_ttc_s"] == pytest.approx(2.4 if expected == [(1.0, 1.5)] else 2.0)


def test_events_come_sorted_by_start() -> None:
    pieces: list[Piece] = [(16.0, 0.6, 25.0, None), (1.0, 0.6, 25.0, 2.0), CLEAR]
    events = drive(pieces)
    assert [e["type"] for e in events] == [FOLLOWING, COLLISION]
    assert events[0]["start_s"] <= events[1]["start_s"]
