"""The day simulator: deterministic for a seed, exact accounting on a tiny scenario, and the default day's
acceptance: framequeue's policy meets the SLA at a lower cost than fixed peak and backlog tracking."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from framequeue.cli.simulate import simulate as simulate_command
from framequeue.scaling.arrivals import DailyProfile, Video, day_of_videos
from framequeue.scaling.controllers import BacklogTracking, FixedPeak, FramequeuePolicy
from framequeue.scaling.policy import PolicyConfig
from framequeue.scaling.report import Scenario, compare, framequeue_config, markdown_table, peak_workers
from framequeue.scaling.simulate import Infra, Prices, percentile, simulate


def test_profile_puts_70_percent_in_the_9_hour_window() -> None:
    shares = DailyProfile().hourly_shares()
    assert sum(shares) == pytest.approx(1.0)
    assert sum(shares[8:17]) == pytest.approx(0.7)


def test_deterministic_for_a_seed() -> None:
    small = Scenario(videos_per_day=400, seed=7)
    first = markdown_table(compare(small), 300)
    assert markdown_table(compare(small), 300) == first
    assert markdown_table(compare(Scenario(videos_per_day=400, seed=8)), 300) != first
    assert day_of_videos(400, 7) == day_of_videos(400, 7)


def test_fixed_policy_accounting_matches_a_hand_calculation() -> None:
    # two ready workers sharing one ready endpoint (ratio 2); three videos
    videos = [Video(0.0, 100.0), Video(10.0, 50.0), Video(20.0, 30.0)]
    result = simulate(
        videos,
        FixedPeak(2),
        Infra(workers_per_endpoint=2, tick_s=60.0),
        Prices(gpu_node_per_h=3.06, cpu_worker_per_h=0.288),
        start_s=0.0,
        day_s=3600.0,
        initial_ready_workers=2,
    )
    # job 0 on worker A: 0 -> 100; job 1 on worker B: 10 -> 60; job 2 waits for B: 60 -> 90
    assert result.completion_s == [100.0, 50.0, 70.0]
    assert result.worker_hours == pytest.approx(2.0)
    assert result.gpu_hours == pytest.approx(1.0)
    assert result.cost_usd == pytest.approx(2 * 0.288 + 3.06)
    assert result.cost_per_1000() == pytest.approx(1000 * 3.636 / 3)
    assert result.sla_attainment(60.0) == pytest.approx(1 / 3)
    assert percentile(result.completion_s, 99) == 100.0


def test_endpoints_gate_capacity_and_start_up_is_billed() -> None:
    # from zero: the first job waits for a worker (10 s) and an endpoint (30 s) to start
    videos = [Video(5.0, 20.0)]
    infra = Infra(worker_start_s=(10.0, 10.0), endpoint_start_s=(30.0, 30.0), workers_per_endpoint=4, tick_s=10.0)
    fq = FramequeuePolicy(PolicyConfig(idle_to_zero_s=0, scale_in_cooldown_s=0))
    result = simulate(videos, fq, infra, start_s=0.0, day_s=600.0)
    # seen at the tick at 10 s, endpoint ready at 40 s, done at 60 s
    assert result.completion_s == [55.0]
    assert 0 < result.gpu_hours < 600 / 3600


def test_default_day_framequeue_meets_sla_cheaper_than_fixed_and_backlog() -> None:
    scenario = Scenario()
    peak = peak_workers(scenario)
    fixed, backlog, fq = compare(
        scenario,
        [FixedPeak(peak), BacklogTracking(max_workers=2 * peak), FramequeuePolicy(framequeue_config(scenario))],
    )
    assert fq.sla_attainment(300) >= 0.999
    assert fq.cost_per_1000() < fixed.cost_per_1000()
    assert fq.cost_per_1000() < backlog.cost_per_1000()


def test_cli_writes_table_and_png(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    result = CliRunner().invoke(simulate_command, ["--videos-per-day", "300", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "framequeue policy" in result.output
    assert (out / "load.png").stat().st_size > 1000
    assert (out / "table.md").read_text().startswith("| policy |")
