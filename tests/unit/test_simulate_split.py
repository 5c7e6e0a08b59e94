"""split_wall_s: one split video's wall time through the day simulator, checked against hand schedules."""

from __future__ import annotations

import pytest

from framequeue.scaling.simulate import SplitJob, split_wall_s

JOB = SplitJob(split_s=2.0, segments_s=(10.0, 20.0, 30.0), stitch_s=3.0)


def test_one_worker_runs_the_segments_back_to_back() -> None:
    assert split_wall_s(JOB, 1) == pytest.approx(2.0 + 60.0 + 3.0)


def test_two_workers_take_the_segments_in_order() -> None:
    # A: seg0 0-10, then seg2 10-40; B: seg1 0-20 -> the last segment ends at 40 after the split
    assert split_wall_s(JOB, 2) == pytest.approx(2.0 + 40.0 + 3.0)


def test_more_workers_than_segments_floor_at_the_longest_segment() -> None:
    assert split_wall_s(JOB, 3) == pytest.approx(2.0 + 30.0 + 3.0)
    assert split_wall_s(JOB, 128) == split_wall_s(JOB, 3)


def test_handoffs_count_twice_split_to_segments_and_last_segment_to_stitch() -> None:
    job = SplitJob(split_s=2.0, segments_s=(10.0,), stitch_s=3.0, handoff_s=0.5)
    assert split_wall_s(job, 4) == pytest.approx(2.0 + 0.5 + 10.0 + 0.5 + 3.0)


def test_thirty_equal_segments_scale_until_the_segment_count() -> None:
    job = SplitJob(split_s=1.0, segments_s=(40.0,) * 30, stitch_s=1.0)
    walls = {n: split_wall_s(job, n) for n in (1, 8, 30, 32, 128)}
    assert walls[1] == pytest.approx(2.0 + 1200.0)
    assert walls[8] == pytest.approx(2.0 + 4 * 40.0)  # ceil(30 / 8) rounds
    assert walls[30] == walls[32] == walls[128] == pytest.approx(2.0 + 40.0)


def test_refuses_no_workers_and_no_segments() -> None:
    with pytest.raises(ValueError):
        split_wall_s(JOB, 0)
    with pytest.raises(ValueError):
        split_wall_s(SplitJob(1.0, (), 1.0), 1)
