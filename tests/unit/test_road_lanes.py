"""The road pipeline's lanes: resampling, the ego lane and its plausibility checks, smoothing, hold and matching
over time (times are numbers passed in at 25 fps; nothing sleeps), the vanishing point and mirror symmetry."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pytest

from framequeue.pipelines.road.lanes import (
    HOLD_S,
    MATCH_SHARE,
    MAX_EGO_WIDTH_SHARE,
    MIN_EGO_WIDTH_SHARE,
    SMOOTHING_S,
    EgoLane,
    LaneSmoother,
    SmoothLane,
    ego_lane,
    resample,
)

W, H = 960, 540
BOTTOM_Y = H - 1
PERIOD_S = 1 / 25
#: where the straight test lanes meet, (x, y) pixels
VP = (480.0, 260.0)

Polyline = npt.NDArray[np.float32]


def straight(x_bottom: float, vp: tuple[float, float] = VP, y_top: float = 280.0, n: int = 12) -> Polyline:
    """A straight lane from the bottom row at `x_bottom` toward `vp`, drawn from `y_top` down (x, y pixels)."""
    y = np.linspace(y_top, BOTTOM_Y, n)
    x = vp[0] + (x_bottom - vp[0]) * (y - vp[1]) / (BOTTOM_Y - vp[1])
    return np.stack((x, y), axis=1).astype(np.float32)


def vertical(x: float, y_top: float = 280.0) -> Polyline:
    return np.array([[x, y_top], [x, BOTTOM_Y]], np.float32)


def curve(fx: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]], y_top: float = 280.0) -> Polyline:
    y = np.linspace(y_top, BOTTOM_Y, 20)
    return np.stack((fx(y), y), axis=1).astype(np.float32)


def shifted(polyline: Polyline, dx: float) -> Polyline:
    out = polyline.copy()
    out[:, 0] += dx
    return out


def mirrored(polyline: Polyline) -> Polyline:
    """Horizontal mirror about the image centre `W / 2` (the convention `ego_lane` and `Camera` use)."""
    out = polyline.copy()
    out[:, 0] = W - out[:, 0]
    return out


def smoother_with(polylines: Sequence[Polyline], t_s: float = 0.0) -> LaneSmoother:
    smoother = LaneSmoother(W, H)
    smoother.update(t_s, polylines, [0.9] * len(polylines))
    return smoother


def ego_of(polylines: Sequence[Polyline]) -> EgoLane | None:
    return smoother_with(polylines).ego_lane()


def x_at(lane: SmoothLane, y: float) -> float:
    return float(np.interp(y, lane.points[:, 1], lane.points[:, 0]))


def bottoms(smoother: LaneSmoother) -> list[float]:
    return [lane.bottom_x for lane in smoother.lanes()]


# --- resample ---------------------------------------------------------------------------------------------------


def test_resample_interpolates_inside_the_polyline_and_is_nan_outside() -> None:
    polyline = np.array([[100.0, 200.0], [200.0, 400.0]], np.float32)
    rows = np.array([100.0, 199.9, 200.0, 300.0, 350.0, 400.0, 400.1, 500.0])
    np.testing.assert_allclose(
        resample(polyline, rows), [np.nan, np.nan, 100.0, 150.0, 175.0, 200.0, np.nan, np.nan], atol=1e-9
    )


def test_resample_does_not_depend_on_the_polylines_point_order() -> None:
    down = np.array([[100.0, 200.0], [140.0, 260.0], [200.0, 400.0]], np.float32)
    rows = np.linspace(150.0, 450.0, 13)
    expected = resample(down, rows)
    np.testing.assert_array_equal(resample(down[::-1].copy(), rows), expected)
    np.testing.assert_array_equal(resample(down[[1, 2, 0]].copy(), rows), expected)
    # a bent polyline is followed segment by segment, not by one straight line
    np.testing.assert_allclose(resample(down, np.array([230.0, 330.0])), [120.0, 170.0], atol=1e-9)


# --- the ego lane -----------------------------------------------------------------------------------------------


def test_two_lanes_either_side_of_the_centre_bound_the_ego_lane() -> None:
    ego = ego_of([straight(250.0), straight(710.0)])
    assert ego is not None
    assert ego.left.bottom_x == pytest.approx(250.0, abs=1e-3)
    assert ego.right.bottom_x == pytest.approx(710.0, abs=1e-3)
    top = float(ego.polygon[:, 1].min())
    assert ego.polygon[:, 1].max() == BOTTOM_Y
    assert ego.contains(W / 2, BOTTOM_Y)  # the centre of the bottom row, on the polygon's bottom edge
    y_mid = (top + BOTTOM_Y) / 2
    x_left, x_right = x_at(ego.left, y_mid), x_at(ego.right, y_mid)
    assert ego.contains((x_left + x_right) / 2, y_mid)
    assert not ego.contains(x_left - 5, y_mid)
    assert not ego.contains(x_right + 5, y_mid)
    assert not ego.contains(W / 2, BOTTOM_Y + 1)  # below the frame
    assert not ego.contains(W / 2, top - 5)  # above where the lanes were seen


def test_contains_counts_points_on_the_edge() -> None:
    ego = ego_of([straight(250.0), straight(710.0)])
    assert ego is not None
    for x, y in ego.polygon:
        assert ego.contains(x, y), (x, y)
    # the bottom edge runs along the bottom row between the two boundaries
    on_bottom = ego.polygon[ego.polygon[:, 1] == BOTTOM_Y, 0]
    left_x, right_x = float(on_bottom.min()), float(on_bottom.max())
    assert (left_x, right_x) == pytest.approx((250.0, 710.0), abs=1e-3)
    for x in np.linspace(left_x, right_x, 9):
        assert ego.contains(x, BOTTOM_Y), x
    assert not ego.contains(left_x - 1.0, BOTTOM_Y)
    assert not ego.contains(right_x + 1.0, BOTTOM_Y)


def test_the_ego_lane_is_the_pair_nearest_the_centre_of_four_lanes() -> None:
    lanes = [straight(710.0), straight(20.0), straight(940.0), straight(250.0)]  # any order
    smoother = smoother_with(lanes)
    assert bottoms(smoother) == pytest.approx([20.0, 250.0, 710.0, 940.0], abs=1e-3)
    ego = smoother.ego_lane()
    assert ego is not None
    assert (ego.left.bottom_x, ego.right.bottom_x) == pytest.approx((250.0, 710.0), abs=1e-3)
    assert not ego.contains(100.0, BOTTOM_Y)  # between the outer and the inner lane
    assert not ego.contains(860.0, BOTTOM_Y)


def test_the_module_function_and_the_method_agree() -> None:
    smoother = smoother_with([straight(250.0), straight(710.0)])
    via_method = smoother.ego_lane()
    via_function = ego_lane(smoother.lanes(), W, H)
    assert via_method is not None and via_function is not None
    np.testing.assert_array_equal(via_method.polygon, via_function.polygon)


MIN_W = MIN_EGO_WIDTH_SHARE * W
MAX_W = MAX_EGO_WIDTH_SHARE * W


@pytest.mark.parametrize(
    ("name", "polylines", "present"),
    [
        ("both on the left", [straight(100.0), straight(300.0)], False),
        ("both on the right", [straight(600.0), straight(800.0)], False),
        ("one lane", [straight(300.0)], False),
        ("no lane", [], False),
        ("narrower than the minimum", [straight(W / 2 - MIN_W / 2 + 2), straight(W / 2 + MIN_W / 2 - 2)], False),
        ("just wider than the minimum", [straight(W / 2 - MIN_W / 2 - 2), straight(W / 2 + MIN_W / 2 + 2)], True),
        ("just narrower than the maximum", [straight(W / 2 - MAX_W / 2 + 2), straight(W / 2 + MAX_W / 2 - 2)], True),
        ("wider than the maximum", [straight(W / 2 - MAX_W / 2 - 2), straight(W / 2 + MAX_W / 2 + 2)], False),
    ],
)
def test_no_ego_lane_without_a_plausible_pair(name: str, polylines: list[Polyline], present: bool) -> None:
    assert (ego_of(polylines) is not None) is present, name


def test_lanes_crossing_above_the_bottom_are_refused_even_when_wide_apart_at_the_bottom() -> None:
    left = np.array([[700.0, 300.0], [300.0, BOTTOM_Y]], np.float32)
    right = np.array([[260.0, 300.0], [660.0, BOTTOM_Y]], np.float32)
    smoother = smoother_with([left, right])
    lanes = smoother.lanes()
    assert [round(lane.bottom_x) for lane in lanes] == [300, 660]  # a plausible width where they are sorted
    assert smoother.ego_lane() is None


# --- smoothing, hold and matching over time ---------------------------------------------------------------------


def test_smoothing_damps_frame_to_frame_jitter() -> None:
    smoother = LaneSmoother(W, H)
    base = straight(300.0)
    out = []
    for k in range(75):
        jitter = 6.0 if k % 2 else -6.0  # the input moves 12 px between consecutive frames
        smoother.update(k * PERIOD_S, [shifted(base, jitter)], [0.9])
        (lane,) = smoother.lanes()
        out.append(lane.bottom_x)
    steps = np.abs(np.diff(out[25:]))
    assert steps.max() < 0.25 * 12.0
    assert np.mean(out[25:]) == pytest.approx(300.0, abs=1.0)


def test_a_lane_moving_steadily_is_followed_with_a_bounded_lag() -> None:
    speed_px_s = 50.0  # 2 px a frame at 25 fps
    smoother = LaneSmoother(W, H)
    base = straight(300.0)
    lags = []
    for k in range(50):
        t_s = k * PERIOD_S
        smoother.update(t_s, [shifted(base, speed_px_s * t_s)], [0.9])
        (lane,) = smoother.lanes()
        lags.append(300.0 + speed_px_s * t_s - lane.bottom_x)
    # an exponential smoother trails a ramp by about speed x time constant, and the lag does not grow
    assert 0.0 <= lags[-1] <= 1.2 * speed_px_s * SMOOTHING_S
    assert lags[-1] == pytest.approx(lags[25], abs=0.5)
    assert len(smoother.lanes()) == 1


def test_a_new_lane_appears_at_once_with_its_own_position() -> None:
    smoother = smoother_with([straight(250.0)])
    smoother.update(PERIOD_S, [straight(250.0), straight(710.0)], [0.9, 0.8])
    lanes = smoother.lanes()
    assert [lane.bottom_x for lane in lanes] == pytest.approx([250.0, 710.0], abs=1e-3)
    assert lanes[1].score == pytest.approx(0.8)
    assert smoother.ego_lane() is not None


def test_rows_seen_for_the_first_time_join_a_kept_lane_at_once() -> None:
    full = straight(300.0, y_top=300.0)
    smoother = smoother_with([full[full[:, 1] >= 420.0]])  # first only the part near the car is seen
    (lane,) = smoother.lanes()
    assert lane.points[0, 1] >= 420.0
    smoother.update(PERIOD_S, [full], [0.9])
    (lane,) = smoother.lanes()
    assert lane.points[0, 1] == pytest.approx(300.0, abs=12.0)  # the first sampled row below 300
    assert x_at(lane, lane.points[0, 1]) == pytest.approx(float(np.interp(lane.points[0, 1], full[:, 1], full[:, 0])))


def feed_then_miss(missing_s: float) -> list[int]:
    """Lanes counted on each frame while the one lane is missing for `missing_s` after 1 s of being seen."""
    smoother = LaneSmoother(W, H)
    lane = straight(300.0)
    for k in range(25):
        smoother.update(k * PERIOD_S, [lane], [0.9])
    last_seen_s = 24 * PERIOD_S
    counts = []
    for k in range(1, round(missing_s / PERIOD_S) + 1):
        smoother.update(last_seen_s + k * PERIOD_S, [], [])
        counts.append(len(smoother.lanes()))
    return counts


def test_a_lane_missing_for_less_than_the_hold_stays() -> None:
    assert HOLD_S > 0.3
    assert feed_then_miss(0.3) == [1] * 8  # missing on the frames up to 0.32 s after it was last seen


def test_a_lane_missing_for_longer_than_the_hold_is_dropped() -> None:
    counts = feed_then_miss(0.6)
    assert counts[-1] == 0
    held = sum(counts)
    assert held * PERIOD_S <= HOLD_S + 1e-9
    assert counts == [1] * held + [0] * (len(counts) - held)
    assert held == 12  # kept through 0.48 s, gone at 0.52 s


def test_a_held_lane_that_comes_back_is_the_same_lane() -> None:
    smoother = LaneSmoother(W, H)
    lane = straight(300.0)
    smoother.update(0.0, [lane], [0.9])
    for k in range(1, 8):
        smoother.update(k * PERIOD_S, [], [])
    smoother.update(8 * PERIOD_S, [shifted(lane, 10.0)], [0.9])
    (kept,) = smoother.lanes()
    assert 300.0 < kept.bottom_x <= 310.0


def test_two_close_lanes_swapping_order_in_the_input_stay_on_their_own_lanes() -> None:
    gap_px = 0.6 * MATCH_SHARE * W  # near enough that a cross-over would pass the match gate
    a, b = vertical(300.0), vertical(300.0 + gap_px)
    smoother = LaneSmoother(W, H)
    for k in range(30):
        order = [a, b] if k % 2 == 0 else [b, a]
        smoother.update(k * PERIOD_S, order, [0.9, 0.9])
        assert bottoms(smoother) == pytest.approx([300.0, 300.0 + gap_px], abs=1e-3), k


def test_a_lane_matches_the_nearest_kept_lane_not_the_first_in_the_list() -> None:
    smoother = LaneSmoother(W, H)
    smoother.update(0.0, [straight(300.0), straight(340.0)], [0.9, 0.9])
    # only the right one is seen on the next frame, moved 4 px right
    smoother.update(PERIOD_S, [straight(344.0)], [0.9])
    left, right = smoother.lanes()
    assert left.bottom_x == pytest.approx(300.0, abs=1e-3)
    assert 340.0 < right.bottom_x < 344.0


# --- vanishing point --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vp", "x_bottoms"),
    [((480.0, 260.0), (250.0, 710.0)), ((400.0, 250.0), (150.0, 700.0)), ((530.0, 300.0), (330.0, 900.0))],
)
def test_vanishing_point_of_two_straight_lanes(vp: tuple[float, float], x_bottoms: tuple[float, float]) -> None:
    ego = ego_of([straight(x, vp=vp, y_top=vp[1] + 20.0) for x in x_bottoms])
    assert ego is not None
    found = ego.vanishing_point()
    assert found is not None
    assert np.hypot(found[0] - vp[0], found[1] - vp[1]) < 1.0


def test_parallel_lanes_have_no_vanishing_point() -> None:
    ego = ego_of([vertical(300.0), vertical(660.0)])
    assert ego is not None
    assert ego.vanishing_point() is None
    leaning = [np.array([[x + 60.0, 280.0], [x, BOTTOM_Y]], np.float32) for x in (300.0, 660.0)]
    ego = ego_of(leaning)
    assert ego is not None
    assert ego.vanishing_point() is None


def test_lanes_that_diverge_upward_have_no_vanishing_point() -> None:
    left = np.array([[250.0, 300.0], [350.0, BOTTOM_Y]], np.float32)
    right = np.array([[710.0, 300.0], [610.0, BOTTOM_Y]], np.float32)
    ego = ego_of([left, right])
    assert ego is not None
    assert ego.vanishing_point() is None


# --- mirror symmetry --------------------------------------------------------------------------------------------


def mirror_scene() -> list[Polyline]:
    """Three curved lanes, not symmetric about the centre."""
    return [
        curve(lambda y: 200.0 + 0.9 * (BOTTOM_Y - y) - 0.0008 * (BOTTOM_Y - y) ** 2),
        curve(lambda y: 760.0 - 0.7 * (BOTTOM_Y - y) - 0.0005 * (BOTTOM_Y - y) ** 2),
        curve(lambda y: -150.0 + 1.8 * (BOTTOM_Y - y), y_top=330.0),
    ]


def test_mirroring_the_lanes_mirrors_the_ego_lane() -> None:
    lanes = mirror_scene()
    ego = ego_of(lanes)
    ego_m = ego_of([mirrored(p) for p in lanes])
    assert ego is not None and ego_m is not None
    # the left boundary top to bottom then the right one bottom to top: mirroring reverses the walk
    expected = ego.polygon[::-1].copy()
    expected[:, 0] = W - expected[:, 0]
    np.testing.assert_allclose(ego_m.polygon, expected, atol=1e-3)
    assert ego_m.left.bottom_x == pytest.approx(W - ego.right.bottom_x, abs=1e-3)
    assert ego_m.right.bottom_x == pytest.approx(W - ego.left.bottom_x, abs=1e-3)
    for x in np.linspace(0.0, W, 33):
        for y in np.linspace(250.0, BOTTOM_Y, 17):
            assert ego.contains(x, y) == ego_m.contains(W - x, y), (x, y)
    vp, vp_m = ego.vanishing_point(), ego_m.vanishing_point()
    assert vp is not None and vp_m is not None
    assert vp_m == pytest.approx((W - vp[0], vp[1]), abs=1e-3)


def test_mirroring_keeps_the_ego_lane_through_smoothing() -> None:
    lanes = mirror_scene()
    plain, mirror = LaneSmoother(W, H), LaneSmoother(W, H)
    for k in range(20):
        dx = 4.0 * np.sin(k)
        moved = [shifted(p, dx) for p in lanes]
        plain.update(k * PERIOD_S, moved, [0.9, 0.8, 0.7])
        mirror.update(k * PERIOD_S, [mirrored(p) for p in moved][::-1], [0.7, 0.8, 0.9][::-1])
        ego, ego_m = plain.ego_lane(), mirror.ego_lane()
        assert ego is not None and ego_m is not None
        expected = ego.polygon[::-1].copy()
        expected[:, 0] = W - expected[:, 0]
        np.testing.assert_allclose(ego_m.polygon, expected, atol=1e-3)
