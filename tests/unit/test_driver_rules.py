"""The driver rules at their exact boundaries: distraction_long, distraction_short over a 30 s window, the
speed gate, driver_not_visible, the off-road hysteresis, the neutral pose and the choice of the driver's face."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from framequeue.pipelines.driver.attention import MAX_NEUTRAL_DEG, NEUTRAL_WINDOW_S, NeutralPose, OffRoadRule
from framequeue.pipelines.driver.events import LONG, NOT_VISIBLE, SHORT, Attention, DriverEvents
from framequeue.pipelines.driver.params import DISTRACTION_DEFAULTS, OFF_ROAD_DEFAULTS
from framequeue.pipelines.driver.selection import SWITCH_RATIO, DriverSelector

FPS = 20
PERIOD_S = 1 / FPS
#: above the 50 km/h gate
FAST_MPS = 25.0
GATE_MPS = DISTRACTION_DEFAULTS["min_speed_mps"]
DRIVER = 4

#: (seconds, visible, off road, |yaw - yaw0| degrees, speed m/s or None) pieces of a drive
Piece = tuple[float, bool, bool, float, float | None]


def on(seconds: float, speed: float | None = FAST_MPS) -> Piece:
    return (seconds, True, False, 5.0, speed)


def off(seconds: float, yaw: float = 40.0, speed: float | None = FAST_MPS) -> Piece:
    return (seconds, True, True, yaw, speed)


def hidden(seconds: float, speed: float | None = FAST_MPS) -> Piece:
    return (seconds, False, False, 0.0, speed)


class Drive:
    """DriverEvents fed piece by piece, frame by frame at 20 fps, frame k at k / 20 s."""

    def __init__(self, speed_given: bool = True) -> None:
        self.rules = DriverEvents(DISTRACTION_DEFAULTS, PERIOD_S, speed_given)
        self.frames = 0

    def feed(self, *pieces: Piece) -> DriverEvents:
        for seconds, visible, off_road, yaw, speed in pieces:
            for _ in range(round(seconds * FPS)):
                track, yaw_dev = (DRIVER, yaw) if visible else (None, None)
                self.rules.update(Attention(self.frames / FPS, visible, off_road, speed, yaw_dev, track))
                self.frames += 1
        return self.rules


def drive(pieces: Sequence[Piece], speed_given: bool = True) -> list[dict[str, Any]]:
    """Every event of the drive, after finish()."""
    return Drive(speed_given).feed(*pieces).finish()


def spans(events: list[dict[str, Any]], kind: str | None = None) -> list[tuple[str, float, float]]:
    return [(e["type"], e["start_s"], e["end_s"]) for e in events if kind is None or e["type"] == kind]


def glances(starts: Sequence[float], seconds: float, speed: float | None = FAST_MPS) -> list[Piece]:
    """On road, then a glance of `seconds` at each start (seconds from 0), then 10 s on road."""
    pieces: list[Piece] = []
    now = 0.0
    for start in starts:
        pieces += [on(start - now, speed), off(seconds, speed=speed)]
        now = start + seconds
    return [*pieces, on(10.0, speed)]


#: four 2.5 s glances inside 30 s: 10 s off road, none of them long
FOUR_GLANCES = glances([1.0, 8.5, 16.0, 23.5], 2.5)


# -- distraction_long ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        ([on(1.0), off(2.9), on(1.0)], []),  # 58 frames
        ([on(1.0), off(3.0), on(1.0)], [(LONG, 1.0, 4.0)]),  # 60 frames
        ([off(3.0), on(1.0)], [(LONG, 0.0, 3.0)]),
        # one frame back on road splits the glance: 1.5 s + 1.5 s is no 3 s glance
        ([on(1.0), off(1.5), on(0.05), off(1.5), on(1.0)], []),
        # a frame without the face splits it too
        ([on(1.0), off(1.5), hidden(0.05), off(1.5), on(1.0)], []),
        ([on(1.0), off(3.5), on(2.0), off(2.95), on(1.0), off(3.05), on(1.0)], [(LONG, 1.0, 4.5), (LONG, 10.45, 13.5)]),
    ],
)
def test_distraction_long_boundaries(pieces: list[Piece], expected: list[tuple[str, float, float]]) -> None:
    events = drive(pieces)
    assert spans(events) == expected  # the events' times are rounded to the ms


def test_distraction_long_carries_its_numbers() -> None:
    (event,) = drive([on(2.0), off(1.0, yaw=35.0), off(1.0, yaw=52.3), off(1.5, yaw=-41.0), on(1.0)])
    assert set(event) >= {"type", "start_s", "end_s", "track_id", "max_abs_yaw_deg", "off_road_s"}
    assert event["type"] == LONG
    assert (event["start_s"], event["end_s"]) == (2.0, 5.5)
    assert event["off_road_s"] == 3.5
    assert event["max_abs_yaw_deg"] == 52.3
    assert event["track_id"] == DRIVER


# -- distraction_short -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pieces", "expected", "off_road_s"),
    [
        # 4 x 2.5 s within 30 s: the window total reaches 10 s at the last glance's end (26 s) and falls below it
        # once the window leaves the first glance's start (31 s); from the first glance's start to the last's end
        (FOUR_GLANCES, [(SHORT, 1.0, 26.0)], 10.0),
        # 4 x 2.45 s = 9.8 s: none
        (glances([1.0, 8.5, 16.0, 23.5], 2.45), [], None),
        # 3 x 3.2 s = 9.6 s: three long glances, no short
        (glances([1.0, 11.0, 21.0], 3.2), [(LONG, 1.0, 4.2), (LONG, 11.0, 14.2), (LONG, 21.0, 24.2)], None),
        # 3 x 3.4 s = 10.2 s: three long glances and a short one over them
        (
            glances([1.0, 11.0, 21.0], 3.4),
            [(LONG, 1.0, 4.4), (SHORT, 1.0, 24.4), (LONG, 11.0, 14.4), (LONG, 21.0, 24.4)],
            10.2,
        ),
        # 10 s within exactly 30 s (1.0 to 31.0): counted
        (glances([1.0, 9.0, 17.0, 28.5], 2.5), [(SHORT, 1.0, 31.0)], 10.0),
        # the same glances over 30.05 s: the first glance is partly outside every window that holds the last,
        # so no window holds more than 9.95 s
        (glances([1.0, 9.0, 17.0, 28.55], 2.5), [], None),
        # five glances, 12.5 s: the total stays at or above 10 s while the fifth is added, so one event
        (glances([1.0, 6.0, 11.0, 16.0, 21.0], 2.5), [(SHORT, 1.0, 23.5)], 12.5),
    ],
)
def test_distraction_short_boundaries(
    pieces: list[Piece], expected: list[tuple[str, float, float]], off_road_s: float | None
) -> None:
    events = drive(pieces)
    assert spans(events) == expected  # the events' times are rounded to the ms
    for event in events:
        if event["type"] == SHORT:
            assert event["off_road_s"] == pytest.approx(off_road_s)
            assert event["track_id"] == DRIVER


def test_distraction_short_two_separate_windows() -> None:
    # the total falls below 10 s at 31 s; four more glances from 40 s are a second event
    pieces = [*FOUR_GLANCES[:-1], on(14.0), off(2.5), on(5.0), off(2.5), on(5.0), off(2.5), on(5.0), off(2.5), on(10.0)]
    assert spans(drive(pieces)) == [(SHORT, 1.0, 26.0), (SHORT, 40.0, 65.0)]


def test_a_glance_counts_in_one_distraction_short_only() -> None:
    # a fifth glance at 33 s would make a 30 s window (8.5-38.5) with 10 s off road again, but three of its
    # glances already made the first event: only off-road time after that event's end (26 s) counts
    pieces = glances([1.0, 8.5, 16.0, 23.5, 33.0], 2.5)
    assert spans(drive(pieces)) == [(SHORT, 1.0, 26.0)]
    # with three more glances after it there are 10 s of new off-road time: a second event, after the first
    more = glances([1.0, 8.5, 16.0, 23.5, 33.0, 38.0, 43.0, 48.0], 2.5)
    assert spans(drive(more)) == [(SHORT, 1.0, 26.0), (SHORT, 33.0, 50.5)]


def test_distraction_short_max_yaw_is_over_its_glances() -> None:
    pieces = [on(1.0), off(2.5, yaw=33.0), on(5.0), off(2.5, yaw=61.5), on(5.0), off(2.5, yaw=-44.0), on(5.0),
              off(2.5, yaw=35.0), on(10.0)]
    (event,) = drive(pieces)
    assert event["type"] == SHORT and event["max_abs_yaw_deg"] == 61.5


# -- the speed gate --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("speed", "speed_given", "expected"),
    [
        (13.88, True, []),  # below 50 km/h: off-road time does not count
        (GATE_MPS, True, [SHORT]),  # at the gate: counts
        (13.89, True, [SHORT]),
        (0.0, False, [SHORT]),  # no speed given: every frame counts
        (None, False, [SHORT]),
        (None, True, []),  # the speed track silent: does not count
    ],
)
def test_speed_gate_on_the_short_rule(speed: float | None, speed_given: bool, expected: list[str]) -> None:
    pieces = glances([1.0, 8.5, 16.0, 23.5], 2.5, speed=speed)
    assert [e["type"] for e in drive(pieces, speed_given)] == expected


def test_a_slow_glance_is_not_counted_and_does_not_start_the_event() -> None:
    pieces = [on(1.0), off(2.5, speed=10.0), on(2.5), off(2.5), on(3.5), off(2.5), on(3.5), off(2.5), on(3.5),
              off(2.5), on(10.0)]
    (event,) = drive(pieces)
    assert (event["type"], event["start_s"], event["end_s"]) == (SHORT, 6.0, 26.5)
    assert event["off_road_s"] == 10.0


@pytest.mark.parametrize(
    ("speed", "speed_given", "events"),
    [(13.88, True, 0), (13.89, True, 1), (None, True, 0), (None, False, 1), (3.0, False, 1)],
)
def test_speed_gate_on_the_long_rule(speed: float | None, speed_given: bool, events: int) -> None:
    found = drive([on(1.0, speed), off(3.5, speed=speed), on(1.0, speed)], speed_given)
    assert len(spans(found, LONG)) == events


def test_a_slow_frame_inside_a_glance_splits_it() -> None:
    pieces = [on(1.0), off(1.5), off(0.05, speed=10.0), off(1.5), on(1.0)]
    assert drive(pieces) == []
    assert drive(pieces, speed_given=False) != []


# -- driver_not_visible ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        ([on(1.0), hidden(2.95), on(1.0)], []),
        ([on(1.0), hidden(3.0), on(1.0)], [(NOT_VISIBLE, 1.0, 4.0)]),
        ([hidden(5.0)], [(NOT_VISIBLE, 0.0, 5.0)]),  # no face in the whole video: one event over all of it
        ([on(1.0), hidden(4.0)], [(NOT_VISIBLE, 1.0, 5.0)]),  # open at the end
    ],
)
def test_driver_not_visible_boundaries(pieces: list[Piece], expected: list[tuple[str, float, float]]) -> None:
    events = drive(pieces)
    assert spans(events) == expected  # the events' times are rounded to the ms
    for event in events:
        assert event["max_abs_yaw_deg"] is None and event["off_road_s"] is None


def test_frames_without_the_face_never_count_as_off_road() -> None:
    # a caller that leaves off_road set while the face is gone: the rule reads it as not off road
    events = drive([on(1.0), (4.0, False, True, 50.0, FAST_MPS), on(1.0)])
    assert spans(events) == [(NOT_VISIBLE, 1.0, 5.0)]


# -- finish and active -----------------------------------------------------------------------------------------


def test_finish_closes_what_is_open() -> None:
    events = drive([*FOUR_GLANCES[:-2], off(4.0)])
    # the last glance (23.5 s, 4 s) is long and open at the end; the short event too (total >= 10 s at 26 s)
    assert spans(events) == [(SHORT, 1.0, 27.5), (LONG, 23.5, 27.5)]
    assert [e["off_road_s"] for e in events] == [11.5, 4.0]


def test_events_come_sorted_by_start() -> None:
    events = drive([hidden(3.5), off(3.5), on(1.0)])
    assert [e["type"] for e in events] == [NOT_VISIBLE, LONG]
    assert events[0]["start_s"] <= events[1]["start_s"]


def test_active_reports_events_only_once_they_qualify() -> None:
    d = Drive()
    assert d.feed(on(1.0), off(2.95)).active() == []
    assert d.rules.current_glance_s(3.9) == pytest.approx(2.95)
    assert d.feed(off(0.05)).active() == [LONG]
    assert d.feed(on(0.05)).active() == []
    assert d.rules.current_glance_s(4.0) == 0.0

    d = Drive()
    assert d.feed(on(1.0), hidden(2.95)).active() == []
    assert d.feed(hidden(0.05)).active() == [NOT_VISIBLE]
    assert d.feed(on(0.05)).active() == []

    d = Drive()
    assert d.feed(*FOUR_GLANCES[:-2], off(2.45)).active() == []  # 9.95 s in the window
    assert d.rules.window_total_s(25.95) == pytest.approx(9.95)
    assert d.feed(off(0.05)).active() == [SHORT]
    assert d.feed(on(5.0)).active() == [SHORT]  # up to 31 s: the window still holds 10 s
    assert d.feed(on(0.05)).active() == []
    assert spans(d.rules.finish()) == [(SHORT, 1.0, 26.0)]


# -- OffRoadRule -----------------------------------------------------------------------------------------------

RULE = OffRoadRule.of(OFF_ROAD_DEFAULTS)


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize(
    ("was_off", "yaw_dev", "pitch_dev", "now_off"),
    [
        (False, 0.0, 0.0, False),
        (False, 30.0, 0.0, False),
        (False, 30.01, 0.0, True),
        (False, 0.0, 20.0, False),
        (False, 0.0, 20.01, True),
        (False, 0.0, -20.01, False),  # the face up: never off road by pitch
        (False, 0.0, -89.0, False),
        # once off road: back only below 25 / 15
        (True, 25.5, 0.0, True),
        (True, 25.0, 0.0, True),
        (True, 24.9, 14.0, False),
        (True, 24.9, 15.0, True),
        (True, 0.0, 15.0, True),
        (True, 0.0, 14.9, False),
        (True, 0.0, -40.0, False),
        (True, 29.0, 0.0, True),
    ],
)
def test_off_road_hysteresis(sign: float, was_off: bool, yaw_dev: float, pitch_dev: float, now_off: bool) -> None:
    assert RULE.next(was_off, sign * yaw_dev, pitch_dev) is now_off


def test_off_road_rule_takes_its_params() -> None:
    rule = OffRoadRule.of({"yaw_deg": 20.0, "pitch_down_deg": 10.0, "yaw_back_deg": 12.0, "pitch_back_deg": 5.0})
    assert rule.next(False, 20.5, 0.0) and not rule.next(False, 19.5, 0.0)
    assert rule.next(True, 12.5, 0.0) and not rule.next(True, 11.5, 4.0)


# -- NeutralPose -----------------------------------------------------------------------------------------------


def test_neutral_pose_given_is_used_as_is() -> None:
    pose = NeutralPose({"yaw_deg": 12.5, "pitch_deg": -7.0})
    assert pose.source == "given" and pose.value == (12.5, -7.0)
    for _ in range(400):
        pose.add(25.0, 10.0, PERIOD_S)
    assert pose.source == "given" and pose.value == (12.5, -7.0)


def test_neutral_pose_before_any_face() -> None:
    pose = NeutralPose(None)
    assert pose.source == "none" and pose.value == (0.0, 0.0)
    assert pose.to_json()["samples"] == 0


def test_neutral_pose_is_the_median_of_the_first_ten_seconds_then_frozen() -> None:
    pose = NeutralPose(None)
    pose.add(18.0, 4.0, PERIOD_S)
    assert pose.source == "provisional" and pose.value == (18.0, 4.0)
    # 10 s at 20 fps = 200 samples: 150 of them at (8, 3), 49 glances away at (50, 25)
    for k in range(1, 200):
        assert pose.source == "provisional"
        pose.add(8.0 if k < 150 else 50.0, 3.0 if k < 150 else 25.0, PERIOD_S)
    assert round(NEUTRAL_WINDOW_S * FPS) == 200
    assert pose.source == "measured"
    assert pose.value == (8.0, 3.0)
    # later samples are ignored: 400 more at (25, 12) would move any median over all of them
    for _ in range(400):
        pose.add(25.0, 12.0, PERIOD_S)
    assert pose.source == "measured" and pose.value == (8.0, 3.0)
    assert pose.to_json() == {"yaw_deg": 8.0, "pitch_deg": 3.0, "source": "measured", "window_s": 10.0,
                              "samples": 200}


def test_neutral_pose_median_moves_while_provisional() -> None:
    pose = NeutralPose(None)
    for yaw in (2.0, 10.0, 30.0):
        pose.add(yaw, 0.0, PERIOD_S)
    assert pose.value == (10.0, 0.0)
    pose.add(40.0, 0.0, PERIOD_S)
    assert pose.value == (20.0, 0.0)  # the median of an even count is the mean of the middle two


@pytest.mark.parametrize(("yaw", "pitch", "expected"), [(45.0, -50.0, (30.0, -30.0)), (-31.0, 31.0, (-30.0, 30.0)),
                                                        (29.5, -29.5, (29.5, -29.5))])
def test_neutral_pose_is_clamped(yaw: float, pitch: float, expected: tuple[float, float]) -> None:
    assert MAX_NEUTRAL_DEG == 30.0
    pose = NeutralPose(None)
    for _ in range(200):
        pose.add(yaw, pitch, PERIOD_S)
    assert pose.source == "measured" and pose.value == expected


# -- DriverSelector --------------------------------------------------------------------------------------------


def test_a_big_face_present_throughout_wins() -> None:
    selector = DriverSelector()
    # the small face (a passenger behind) has the lower id, so the tie-break cannot be what decides
    picked = [selector.update(PERIOD_S, {1: 0.01, 2: 0.06}) for _ in range(100)]
    assert set(picked) == {2}
    assert selector.driver == 2


def test_a_small_face_first_is_overtaken_by_the_big_one() -> None:
    selector = DriverSelector()
    assert selector.update(PERIOD_S, {1: 0.01}) == 1
    # with both in view, the big face's score passes 1.2 x the small one's at once
    assert [selector.update(PERIOD_S, {1: 0.01, 2: 0.06}) for _ in range(20)] == [2] * 20


def test_a_bigger_face_passing_briefly_does_not_take_over() -> None:
    selector = DriverSelector()
    for _ in range(200):  # 10 s of the driver at 5 % of the frame: 0.5 face-seconds
        assert selector.update(PERIOD_S, {1: 0.05}) == 1
    for _ in range(20):  # 1 s of someone close to the window at 20 %: 0.2
        assert selector.update(PERIOD_S, {1: 0.05, 3: 0.2}) == 1
    assert selector.driver == 1


def test_driver_not_visible_returns_none_even_with_another_face() -> None:
    selector = DriverSelector()
    for _ in range(100):
        selector.update(PERIOD_S, {1: 0.05})
    assert selector.update(PERIOD_S, {2: 0.02}) is None
    assert selector.update(PERIOD_S, {}) is None
    assert selector.driver == 1
    assert selector.update(PERIOD_S, {1: 0.05, 2: 0.02}) == 1


def test_switching_needs_the_margin() -> None:
    assert SWITCH_RATIO == 1.2
    selector = DriverSelector()
    assert selector.update(1.0, {1: 1.0}) == 1
    # 1.19 > 1.0 but not 1.2 x 1.0: the driver stays, and is returned while visible
    assert selector.update(1.0, {1: 0.0, 2: 1.19}) == 1
    assert selector.driver == 1
    assert selector.update(1.0, {1: 0.0, 2: 0.02}) == 2  # 1.21 > 1.2
    assert selector.driver == 2
    # and back only past 1.2 x 1.21
    assert selector.update(1.0, {1: 0.45, 2: 0.0}) == 2  # 1.45 < 1.452
    assert selector.update(1.0, {1: 0.01, 2: 0.0}) == 1  # 1.46 > 1.452
