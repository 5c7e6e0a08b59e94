"""Frame sampling by time: 25 fps and 30000/1001 streams at 1 and 5 samples a second, and every frame."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from framequeue.media.decode import SampleClock, as_rate


def sampled(rate: Fraction, sample_fps: float | Fraction | None, frames: int) -> list[int]:
    clock = SampleClock(sample_fps)
    return [i for i in range(frames) if clock.take(i / rate)]


def first_frames_at_or_after(rate: Fraction, sample_fps: Fraction, frames: int) -> list[int]:
    """Oracle: for each sample time k/sample_fps, the first frame whose time i/rate reaches it."""
    picks = {math.ceil(k * rate / sample_fps) for k in range(frames)}
    return sorted(i for i in picks if i < frames)


@pytest.mark.parametrize("rate", [Fraction(25), Fraction(30000, 1001)], ids=["25", "29.97"])
@pytest.mark.parametrize("sample_fps", [1, 5, 12, 20])
def test_sampling_matches_sample_times(rate: Fraction, sample_fps: int) -> None:
    frames = 3000
    got = sampled(rate, sample_fps, frames)
    assert got == first_frames_at_or_after(rate, Fraction(sample_fps), frames)
    # one frame per sample time up to the last frame's time: no drift, no sample lost or doubled
    assert len(got) == math.floor((frames - 1) / rate * sample_fps) + 1


def test_ntsc_at_one_fps_does_not_drift() -> None:
    got = sampled(Fraction(30000, 1001), 1, 1100)
    assert got[:3] == [0, 30, 60]
    # 34 s is frame 1018.98: the sample lands on 1019, where every-30th-frame would say 1020
    assert 1019 in got and 1020 not in got


def test_25_fps_samples() -> None:
    assert sampled(Fraction(25), 1, 100) == [0, 25, 50, 75]
    assert sampled(Fraction(25), 5, 20) == [0, 5, 10, 15]


@pytest.mark.parametrize("rate", [Fraction(25), Fraction(30000, 1001)])
def test_none_and_faster_than_the_stream_take_every_frame(rate: Fraction) -> None:
    assert sampled(rate, None, 50) == list(range(50))
    assert sampled(rate, 60, 50) == list(range(50))


def test_float_rates_become_simple_fractions() -> None:
    assert as_rate(1 / 3) == Fraction(1, 3)
    assert as_rate(29.97) == Fraction(2997, 100)
    # 1/3 fps on 25 fps: 3 s is exactly frame 75, which a float 1/3 would just miss
    assert sampled(Fraction(25), 1 / 3, 200) == [0, 75, 150]


def test_sampling_follows_timestamps_not_indexes() -> None:
    clock = SampleClock(1)
    times = [
        Fraction(0),
        Fraction(1, 2),
        Fraction(5, 2),
        Fraction(13, 5),
        Fraction(3),
    ]  # a gap in a VFR stream
    assert [clock.take(t) for t in times] == [True, False, True, False, True]


def test_rejects_non_positive_rates() -> None:
    with pytest.raises(ValueError, match="> 0"):
        SampleClock(0)
