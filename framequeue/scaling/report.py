"""Run every policy over the same day and report: a markdown table and a PNG of load and capacity."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from framequeue.scaling.arrivals import DailyProfile, day_of_videos
from framequeue.scaling.controllers import (
    BacklogTracking,
    CpuUtilisation,
    FixedPeak,
    FramequeuePolicy,
    ScheduledReactive,
)
from framequeue.scaling.policy import HourFloor, PolicyConfig
from framequeue.scaling.simulate import Controller, Infra, Prices, Result, percentile, simulate

__all__ = ["Scenario", "compare", "framequeue_config", "markdown_table", "plot", "policies"]


@dataclass(frozen=True)
class Scenario:
    videos_per_day: int = 20_000
    seed: int = 1
    sla_s: float = 300.0
    prices: Prices = field(default_factory=Prices)
    infra: Infra = field(default_factory=Infra)
    profile: DailyProfile = field(default_factory=DailyProfile)
    warmup_s: float = 3600.0


def mean_service_s() -> float:
    """The mean of the processing-time distribution (by a fixed large sample)."""
    import random

    from framequeue.scaling.arrivals import processing_s

    rng = random.Random(0)
    return sum(processing_s(rng) for _ in range(20_000)) / 20_000


def peak_workers(scenario: Scenario, utilisation: float = 0.8) -> int:
    """Workers for the busiest hour at the given utilisation, rounded up to whole endpoints."""
    busy = scenario.profile.peak_rate_per_s(scenario.videos_per_day) * mean_service_s()
    ratio = scenario.infra.workers_per_endpoint
    return int(math.ceil(busy / utilisation / ratio) * ratio)


def framequeue_config(scenario: Scenario) -> PolicyConfig:
    """framequeue's policy for this day: track (waiting + in-flight) at one per worker, and floors that have
    the GPU nodes warm before the morning ramp (their start-up is a third of the SLA)."""
    peak = peak_workers(scenario)
    p = scenario.profile
    return PolicyConfig(
        target_jobs_per_worker=1.0,
        tolerance=0.1,
        min_workers=0,
        max_workers=2 * peak,
        scale_out_cooldown_s=15.0,
        scale_in_cooldown_s=300.0,
        idle_to_zero_s=900.0,
        floors=(HourFloor(p.peak_start_h, (p.peak_start_h + p.peak_hours) % 24, math.ceil(peak * 0.25)),),
        workers_per_endpoint=scenario.infra.workers_per_endpoint,
    )


def policies(scenario: Scenario) -> list[Controller]:
    peak = peak_workers(scenario)
    return [
        FixedPeak(peak),
        CpuUtilisation(max_workers=2 * peak),
        BacklogTracking(max_workers=2 * peak),
        ScheduledReactive(peak_workers=peak, max_workers=2 * peak),
        FramequeuePolicy(framequeue_config(scenario)),
    ]


def compare(scenario: Scenario, controllers: Sequence[Controller] | None = None) -> list[Result]:
    videos = day_of_videos(scenario.videos_per_day, scenario.seed, scenario.profile, scenario.warmup_s)
    results = []
    for c in controllers if controllers is not None else policies(scenario):
        initial = c.workers if isinstance(c, FixedPeak) else 0
        results.append(
            simulate(
                videos,
                c,
                scenario.infra,
                scenario.prices,
                seed=scenario.seed,
                start_s=-scenario.warmup_s,
                initial_ready_workers=initial,
            )
        )
    return results


def markdown_table(results: Sequence[Result], sla_s: float) -> str:
    lines = [
        f"| policy | SLA attainment (≤ {sla_s:g} s) | p99 completion s | cost per 1000 videos | GPU-hours | "
        "worker-hours | peak workers |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        peak = max((s.workers for s in r.samples), default=0)
        lines.append(
            f"| {r.policy} | {100 * r.sla_attainment(sla_s):.2f} % | {percentile(r.completion_s, 99):.0f} | "
            f"${r.cost_per_1000():.2f} | {r.gpu_hours:.1f} | {r.worker_hours:.1f} | {peak} |"
        )
    return "\n".join(lines) + "\n"


def plot(results: Sequence[Result], path: Path, tick_s: float) -> None:
    """Arrivals, outstanding jobs and capacity over the day, one panel per policy (needs the `sim` extra)."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise RuntimeError("the plot needs matplotlib: pip install 'framequeue[sim]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results) + 1, 1, figsize=(9, 2 * (len(results) + 1)), sharex=True, dpi=72)
    first = results[0].samples
    hours = [s.t_s / 3600 for s in first]
    axes[0].plot(hours, [s.arrivals * 3600 / tick_s for s in first], lw=0.6, color="grey")
    axes[0].set_ylabel("arrivals/h")
    axes[0].set_title("Arrivals over the day")
    for ax, r in zip(axes[1:], results, strict=True):
        h = [s.t_s / 3600 for s in r.samples]
        ax.fill_between(h, [s.outstanding for s in r.samples], color="tab:orange", alpha=0.4, lw=0,
                        label="waiting + in flight")
        ax.plot(h, [s.workers for s in r.samples], color="tab:blue", lw=0.9, label="workers provisioned")
        ax.plot(h, [s.capacity for s in r.samples], color="tab:green", lw=0.7, label="jobs runnable")
        ax.plot(h, [s.endpoints for s in r.samples], color="tab:red", lw=0.7, label="GPU endpoints")
        ax.set_title(r.policy, fontsize=9)
        ax.set_ylabel("count")
    axes[1].legend(loc="upper left", fontsize=7, ncol=4)
    axes[-1].set_xlabel("hour of day")
    axes[-1].set_xticks(range(0, 25, 3))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
