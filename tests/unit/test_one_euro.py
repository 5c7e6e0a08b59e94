"""The One Euro filter: the authors' test vector, then its behaviour on made-up signals."""

from __future__ import annotations

import csv
import itertools
import math

import pytest

from framequeue.pipelines.driver.one_euro import OneEuroFilter, OneEuroVector
from tests.conftest import require_shared


def alpha(cutoff_hz: float, dt_s: float) -> float:
    """The paper's smoothing factor, written out independently of the module."""
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff_hz * dt_s))


def test_matches_the_authors_ground_truth_vector() -> None:
    path = require_shared("data", "one_euro", "groundTruth.csv")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1200
    # the run's parameters, from the README beside the file; its timestamps are 1/120 s apart
    f1 = OneEuroFilter(min_cutoff_hz=1.0, beta=0.1, d_cutoff_hz=1.0)
    errors = [abs(f1.filter(float(r["timestamp"]), float(r["noisy"])) - float(r["filtered"])) for r in rows]
    worst = max(range(len(rows)), key=errors.__getitem__)
    assert errors[worst] <= 1e-3, f"row {worst}: off by {errors[worst]}"
    assert errors[0] == 0.0  # the first sample passes through


def test_defaults_are_the_products() -> None:
    f = OneEuroFilter()
    assert (f.min_cutoff_hz, f.beta, f.d_cutoff_hz) == (1.0, 0.05, 1.0)


def test_constant_input_stays_constant() -> None:
    f = OneEuroFilter()
    assert all(f.filter(i / 30, 12.5) == pytest.approx(12.5, abs=1e-12) for i in range(300))


def test_step_converges_without_overshoot() -> None:
    f = OneEuroFilter(min_cutoff_hz=1.0, beta=0.05)
    f.filter(0.0, 0.0)
    out = [f.filter(i / 30, 1.0) for i in range(1, 91)]  # 3 s at 30 fps
    assert all(b >= a for a, b in itertools.pairwise(out))
    assert all(0.0 < y <= 1.0 for y in out)
    assert out[0] < 0.5  # the first frame after the step is smoothed...
    assert out[-1] > 0.999  # ...and after 3 s it has arrived


def test_higher_beta_lags_less_on_a_ramp() -> None:
    lags = []
    for beta in (0.0, 0.05, 0.5):
        f = OneEuroFilter(min_cutoff_hz=1.0, beta=beta)
        for i in range(61):
            t_s = i / 30
            y = f.filter(t_s, 20.0 * t_s)  # 20 deg/s, like a head turning
        lags.append(20.0 * 2.0 - y)
    assert lags[0] > lags[1] > lags[2] > 0.0
    assert lags[0] > 2 * lags[2]


def test_first_step_uses_the_timestamp_gap() -> None:
    """With beta = 0 the first step after a pass-through is alpha(min_cutoff, dt) of the jump."""
    for dt_s in (0.005, 1 / 30, 0.25):
        f = OneEuroFilter(min_cutoff_hz=2.0, beta=0.0)
        f.filter(10.0, 0.0)
        assert f.filter(10.0 + dt_s, 1.0) == pytest.approx(alpha(2.0, dt_s), rel=1e-12)


def test_irregular_timestamps_track_a_signal() -> None:
    """Jittered and dropped frames: no error, the output stays within the input's range and follows it."""
    f = OneEuroFilter(min_cutoff_hz=1.0, beta=0.05)
    t_s, out = 0.0, 0.0
    gaps_s = [1 / 30, 1 / 60, 0.1, 1 / 30, 0.003, 0.4, 1 / 25]  # includes dropped frames and a near-duplicate
    for i in range(200):
        t_s += gaps_s[i % len(gaps_s)]
        x = 30.0 * math.sin(0.5 * t_s)
        out = f.filter(t_s, x)
        assert -30.0 <= out <= 30.0
    assert out == pytest.approx(30.0 * math.sin(0.5 * t_s), abs=3.0)


def test_only_time_differences_matter() -> None:
    a, b = OneEuroFilter(), OneEuroFilter()
    xs = [0.0, 3.0, 2.5, 7.0, 6.0, 6.5]
    ts = [0.0, 0.03, 0.07, 0.1, 0.2, 0.21]
    for t_s, x in zip(ts, xs, strict=True):
        assert a.filter(t_s, x) == pytest.approx(b.filter(t_s + 1000.0, x), rel=1e-9)


@pytest.mark.parametrize("t_s", [1.0, 0.5])
def test_timestamp_not_after_the_previous_is_an_error(t_s: float) -> None:
    f = OneEuroFilter()
    f.filter(1.0, 0.0)
    with pytest.raises(ValueError, match="not after"):
        f.filter(t_s, 1.0)
    assert f.filter(1.1, 0.0) == 0.0  # the failed call changed nothing


@pytest.mark.parametrize(("t_s", "x"), [(0.0, math.nan), (math.nan, 0.0), (0.0, math.inf)])
def test_non_finite_input_is_an_error(t_s: float, x: float) -> None:
    with pytest.raises(ValueError):
        OneEuroFilter().filter(t_s, x)


@pytest.mark.parametrize(
    "kwargs",
    [{"min_cutoff_hz": 0.0}, {"min_cutoff_hz": -1.0}, {"d_cutoff_hz": 0.0}, {"beta": -0.1}, {"beta": math.nan}],
)
def test_bad_parameters_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        OneEuroFilter(**kwargs)


def test_reset_forgets_the_past() -> None:
    f = OneEuroFilter()
    f.filter(5.0, 0.0)
    f.filter(6.0, 10.0)
    f.reset()
    assert f.filter(0.0, 42.0) == 42.0  # passes through, and an earlier time is fine after a reset


def test_vector_filters_each_value_like_its_own_filter() -> None:
    vec = OneEuroVector(3, min_cutoff_hz=0.5, beta=0.2)
    singles = [OneEuroFilter(min_cutoff_hz=0.5, beta=0.2) for _ in range(3)]
    for i in range(20):
        values = (float(i), -2.0 * i, math.sin(i))
        got = vec.filter(i / 30, values)
        assert got == tuple(f.filter(i / 30, v) for f, v in zip(singles, values, strict=True))
    with pytest.raises(ValueError):
        vec.filter(1.0, (1.0, 2.0))
    with pytest.raises(ValueError):
        vec.filter(1.0, (1.0, math.nan, 2.0))
    with pytest.raises(ValueError):
        OneEuroVector(0)
