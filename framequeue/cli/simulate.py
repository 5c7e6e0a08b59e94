"""`framequeue simulate`: compare autoscaling policies over a simulated day (scaling.report runs them), or, with
--split-measured, predict how one long video's wall time falls with the workers sharing it (scaling.splitcurve)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click

from framequeue.scaling import splitcurve
from framequeue.scaling.report import Scenario, compare, markdown_table, plot
from framequeue.scaling.simulate import Prices


@click.command("simulate")
@click.option("--videos-per-day", type=click.IntRange(min=1), default=20_000, show_default=True,
              envvar="FQ_SIM_VIDEOS_PER_DAY", help="Videos arriving in the day [env FQ_SIM_VIDEOS_PER_DAY].")
@click.option("--seed", type=int, default=1, show_default=True, envvar="FQ_SIM_SEED",
              help="Seed of arrivals, processing and start-up times [env FQ_SIM_SEED].")
@click.option("--sla-s", type=click.FloatRange(min=1), default=300.0, show_default=True, envvar="FQ_SIM_SLA_S",
              help="End-to-end SLA, arrival to done, seconds [env FQ_SIM_SLA_S].")
@click.option("--gpu-node-per-h", type=float, default=3.06, show_default=True, envvar="FQ_SIM_GPU_NODE_PER_H",
              help="Price of a GPU node (one inference endpoint), $/h [env FQ_SIM_GPU_NODE_PER_H].")
@click.option("--cpu-worker-per-h", type=float, default=0.288, show_default=True, envvar="FQ_SIM_CPU_WORKER_PER_H",
              help="Price of a CPU worker pod, $/h [env FQ_SIM_CPU_WORKER_PER_H].")
@click.option("--split-measured", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Instead of a day: the wall time of one long video split across 1 to 128 workers, from a "
                   "measured split run (bench/results/split.json, `make bench-split`).")
@click.option("--split-minutes", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="With --split-measured: the length of the video to predict, minutes.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="FQ_SIM_OUT", help="Write table.md and load.png here [env FQ_SIM_OUT].")
def simulate(
    videos_per_day: int, seed: int, sla_s: float, gpu_node_per_h: float, cpu_worker_per_h: float,
    split_measured: Path | None, split_minutes: float, out_dir: Path | None,
) -> None:
    """Simulate a day of video jobs under each autoscaling policy; print SLA attainment, p99 and cost.

    With --split-measured: one long video split into segments on N workers instead (split, segments, stitch)."""
    if split_measured is not None:
        _split(split_measured, split_minutes, sla_s, out_dir)
        return
    scenario = replace(
        Scenario(videos_per_day=videos_per_day, seed=seed, sla_s=sla_s),
        prices=Prices(gpu_node_per_h=gpu_node_per_h, cpu_worker_per_h=cpu_worker_per_h),
    )
    results = compare(scenario)
    table = markdown_table(results, sla_s)
    click.echo(table, nl=False)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "table.md").write_text(table)
        plot(results, out_dir / "load.png", scenario.infra.tick_s)
        click.echo(f"wrote {out_dir / 'table.md'} and {out_dir / 'load.png'}")


def _split(measured: Path, minutes: float, sla_s: float, out_dir: Path | None) -> None:
    try:
        m = splitcurve.Measurement.from_json(json.loads(measured.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError) as exc:  # json.JSONDecodeError is a ValueError
        raise click.BadParameter(str(exc), param_hint="--split-measured") from None
    text = splitcurve.markdown(splitcurve.curve(m, minutes, sla_s))
    click.echo(text, nl=False)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "split.md").write_text(text)
        click.echo(f"wrote {out_dir / 'split.md'}")
