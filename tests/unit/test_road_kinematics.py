"""Distance from width, TTC from the width's change, ego speed and time gap: synthetic geometry with known truth."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from framequeue.pipelines.road.geometry import (
    camera_for,
    distance_from_width_m,
    ground_distance_m,
    lateral_offset_m,
)
from framequeue.pipelines.road.kinematics import (
    TTC_MIN_SAMPLES,
    EgoSpeed,
    WidthHistory,
    fit_line,
    time_gap_s,
    ttc_from_inverse_widths,
)

CAR_M = 1.8


@pytest.mark.parametrize("z_m", [5.0, 8.0, 12.5, 20.0, 33.3, 45.0, 60.0])
@pytest.mark.parametrize("focal_px", [700.0, 1108.5, 1600.0])
def test_width_gives_distance_within_1_percent(z_m: float, focal_px: float) -> None:
    width_px = focal_px * CAR_M / z_m
    assert distance_from_width_m(focal_px, CAR_M, width_px) == pytest.approx(z_m, rel=0.01)
    # rounded to whole pixels as a detector reports them, still within 1 % up to 60 m at these focal lengths
    if width_px >= 50:
        assert distance_from_width_m(focal_px, CAR_M, round(width_px)) == pytest.approx(z_m, rel=0.01)


def test_smoothed_distance_of_a_constant_width_is_exact() -> None:
    history = WidthHistory()
    for k in range(30):
        history.add(k / 25, 1000 * CAR_M / 20.0)
    assert history.distance_m(29 / 25, 1000.0, CAR_M) == pytest.approx(20.0, rel=1e-9)


@pytest.mark.parametrize("hfov_deg", [40.0, 60.0, 90.0, 120.0])
def test_halving_resolution_and_focal_changes_nothing(hfov_deg: float) -> None:
    full, half = camera_for({"hfov_deg": hfov_deg}, 1920, 1080), camera_for({"hfov_deg": hfov_deg}, 960, 540)
    assert half.focal_px == pytest.approx(full.focal_px / 2)
    for z_m in (6.0, 25.0, 55.0):
        w_full = full.focal_px * CAR_M / z_m
        x_full = full.cx_px + 0.8 * full.focal_px / z_m  # 0.8 m right of the line of sight
        assert distance_from_width_m(half.focal_px, CAR_M, w_full / 2) == pytest.approx(z_m, rel=1e-12)
        assert lateral_offset_m(x_full / 2, half, z_m) == pytest.approx(lateral_offset_m(x_full, full, z_m))
        assert lateral_offset_m(x_full, full, z_m) == pytest.approx(0.8)


def test_camera_defaults_and_given_focal() -> None:
    default = camera_for(None, 1280, 720)
    assert (default.focal_px, default.source) == (1280.0, "default")
    assert default.hfov_deg == pytest.approx(2 * math.degrees(math.atan(0.5)))
    assert camera_for({"focal_px": 900.0}, 1280, 720).focal_px == 900.0
    assert camera_for({"hfov_deg": 90.0}, 1280, 720).focal_px == pytest.approx(640.0)


def test_ground_distance_needs_height_and_a_contact_below_the_horizon() -> None:
    cam = camera_for({"focal_px": 1000.0, "height_m": 1.5}, 1280, 720)
    assert ground_distance_m(cam, 360 + 1000 * 1.5 / 30, 360.0) == pytest.approx(30.0)
    assert ground_distance_m(cam, 360.5, 360.0) is None
    assert ground_distance_m(camera_for({"focal_px": 1000.0}, 1280, 720), 500.0, 360.0) is None


def test_fit_line_is_exact_on_a_line() -> None:
    t = [0.0, 0.1, 0.25, 0.4]
    value, slope = fit_line(t, [3 - 2 * x for x in t], at_s=0.4)
    assert (value, slope) == (pytest.approx(2.2), pytest.approx(-2.0))
    with pytest.raises(ValueError):
        fit_line([1.0], [1.0], 1.0)


def approach(z0_m: float, closing_mps: float, fps: float, seconds: float, focal_px: float = 1000.0,
             noise_px: float = 0.0, seed: int = 0) -> list[tuple[float, float, float]]:
    """(t_s, measured width px, true distance m) of a car closing at a constant speed."""
    rng = np.random.default_rng(seed)
    samples = []
    for k in range(int(seconds * fps)):
        t = k / fps
        z = z0_m - closing_mps * t
        samples.append((t, focal_px * CAR_M / z + rng.normal(0, noise_px) if noise_px else focal_px * CAR_M / z, z))
    return samples


def test_ttc_of_a_constant_velocity_approach_is_exact_without_noise() -> None:
    history = WidthHistory()
    checked = 0
    for k, (t, w, z) in enumerate(approach(40.0, 6.0, 25, 5.0)):
        history.add(t, w)
        ttc = history.ttc_s(t)
        if k + 1 < TTC_MIN_SAMPLES:
            assert ttc is None
            continue
        truth = z / 6.0
        if truth < 10:
            assert ttc is not None and ttc == pytest.approx(truth, rel=0.005)
            checked += 1
    assert checked > 100


def test_ttc_p90_within_10_percent_with_0_7_px_noise() -> None:
    errors = []
    for seed in range(20):
        history = WidthHistory()
        for t, w, z in approach(36.0, 7.0, 25, 4.5, focal_px=1108.5, noise_px=0.7, seed=seed):
            history.add(t, w)
            truth = z / 7.0
            if t >= 1.0 and truth <= 6.0:
                ttc = history.ttc_s(t)
                errors.append(math.inf if ttc is None else abs(ttc / truth - 1))
    assert len(errors) > 1000
    assert float(np.percentile(errors, 90)) <= 0.10


def test_two_frame_ttc_would_be_noise() -> None:
    """Why TTC is fitted: the same data read from two consecutive frames is off by tens of percent."""
    samples = approach(36.0, 7.0, 25, 4.5, focal_px=1108.5, noise_px=0.7, seed=3)
    errors = []
    for (t0, w0, _), (t1, w1, z1) in itertools.pairwise(samples):
        if t1 >= 1.0 and z1 / 7.0 <= 6.0 and w1 > w0:
            errors.append(abs((t1 - t0) * w0 / (w1 - w0) / (z1 / 7.0) - 1))
    assert float(np.percentile(errors, 90)) > 0.3


def test_an_opening_or_steady_vehicle_has_no_ttc() -> None:
    for closing in (-4.0, 0.0):
        history = WidthHistory()
        for t, w, _ in approach(20.0, closing, 25, 3.0):
            history.add(t, w)
            assert history.ttc_s(t) is None
    assert ttc_from_inverse_widths([0.0, 1.0], [0.01, 0.0099], 1.0) is None  # TTC 99 s: above the 10 s cap


def test_ttc_needs_ten_samples_within_two_seconds() -> None:
    five_fps, four_fps = WidthHistory(), WidthHistory()
    for t, w, _ in approach(30.0, 8.0, 5, 2.0):
        five_fps.add(t, w)
    for t, w, _ in approach(30.0, 8.0, 4, 2.5):
        four_fps.add(t, w)
    assert len(five_fps) == 10 and five_fps.ttc_s(1.8) is not None
    assert len(four_fps) == 10 and four_fps.ttc_s(2.25) is None


def test_history_ignores_bad_samples_and_forgets_old_ones() -> None:
    history = WidthHistory()
    history.add(0.0, 50.0)
    history.add(0.0, 60.0)  # same time: ignored
    history.add(0.1, float("nan"))
    history.add(0.2, -1.0)
    assert len(history) == 1
    for k in range(1, 200):
        history.add(k * 0.04, 50.0)
    assert len(history) <= 3.0 / 0.04 + 1


def test_ego_speed_constant_track_and_outside() -> None:
    assert EgoSpeed(12.0, None).at(99.0) == 12.0
    track = EgoSpeed(None, [[1.0, 10.0], [3.0, 20.0]])
    assert (track.at(1.0), track.at(2.5), track.at(3.0)) == (10.0, 17.5, 20.0)
    assert track.at(0.5) is None and track.at(3.5) is None
    unknown = EgoSpeed(None, None)
    assert not unknown.known and unknown.at(1.0) is None


@pytest.mark.parametrize(
    ("distance", "speed", "gap"),
    [(27.0, 27.0, 1.0), (10.0, 20.0, 0.5), (None, 20.0, None), (10.0, None, None), (10.0, 0.2, None)],
)
def test_time_gap(distance: float | None, speed: float | None, gap: float | None) -> None:
    assert time_gap_s(distance, speed) == gap
