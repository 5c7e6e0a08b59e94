"""`framequeue autoscale`: the local supervisor (framequeue.scaling.autoscale does the work).

    framequeue autoscale [--max-workers 4 --floor 08-17:2 --plot load.png ...]   # run until SIGTERM / Ctrl-C
    framequeue autoscale plot DECISIONS OUT.png                                # picture a decisions file
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from framequeue.cli.common import lanes_option, reports_errors

log = logging.getLogger("framequeue.autoscale")


def _floors(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[Any, ...]:
    from framequeue.scaling.autoscale.floors import parse_floor

    try:
        return tuple(parse_floor(v) for v in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _root_obj(ctx: click.Context) -> dict[str, Any]:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, dict) else {}


@click.group("autoscale", invoke_without_command=True,
             context_settings={"show_default": True, "max_content_width": 110})
@click.option("--interval-s", type=click.FloatRange(min=0.05), default=2.0, envvar="FQ_AUTOSCALE_INTERVAL_S",
              show_envvar=True, help="Seconds between decisions.")
@click.option("--min-workers", type=click.IntRange(min=0), default=0, envvar="FQ_AUTOSCALE_MIN_WORKERS",
              show_envvar=True)
@click.option("--max-workers", type=click.IntRange(min=1), default=None, show_default=False,
              envvar="FQ_AUTOSCALE_MAX_WORKERS", show_envvar=True, help="[default: this machine's CPU count]")
@click.option("--target-jobs-per-worker", type=click.FloatRange(min=0.01), default=1.0,
              envvar="FQ_AUTOSCALE_TARGET_JOBS_PER_WORKER", show_envvar=True,
              help="Outstanding (waiting + in-flight) jobs one worker should carry.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=0.1, envvar="FQ_AUTOSCALE_TOLERANCE",
              show_envvar=True, help="Relative band around the target inside which nothing changes.")
@click.option("--scale-out-cooldown-s", type=click.FloatRange(min=0), default=10.0,
              envvar="FQ_AUTOSCALE_SCALE_OUT_COOLDOWN_S", show_envvar=True)
@click.option("--scale-in-cooldown-s", type=click.FloatRange(min=0), default=60.0,
              envvar="FQ_AUTOSCALE_SCALE_IN_COOLDOWN_S", show_envvar=True)
@click.option("--idle-to-zero-s", type=click.FloatRange(min=0), default=300.0, envvar="FQ_AUTOSCALE_IDLE_TO_ZERO_S",
              show_envvar=True, help="Seconds with nothing outstanding before the last worker stops.")
@click.option("--activation-jobs", type=click.IntRange(min=0), default=0, envvar="FQ_AUTOSCALE_ACTIVATION_JOBS",
              show_envvar=True, help="Zero workers wake when more than this many jobs are outstanding.")
@click.option("--floor", "floors", multiple=True, callback=_floors, envvar="FQ_AUTOSCALE_FLOORS", show_envvar=True,
              help="Hour floor START-END:WORKERS, e.g. 08-17:4 (repeatable; env: space-separated).")
@click.option("--tz", default="local", envvar="FQ_AUTOSCALE_TZ", show_envvar=True,
              help="Time zone of the floors' hours: an IANA name (Europe/Paris, UTC) or 'local'.")
@click.option("--workers-per-endpoint", type=click.FloatRange(min=0.01), default=4.0,
              envvar="FQ_AUTOSCALE_WORKERS_PER_ENDPOINT", show_envvar=True,
              help="Workers per inference endpoint (the endpoint count is logged, not acted on yet).")
@click.option("--kill-grace-s", type=click.FloatRange(min=0), default=10.0, envvar="FQ_AUTOSCALE_KILL_GRACE_S",
              show_envvar=True, help="A worker alive FQ_DRAIN_S + this long after its SIGTERM is SIGKILLed.")
@click.option("--decisions", "decisions_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="FQ_AUTOSCALE_DECISIONS", show_envvar=True,
              help="JSON lines file every decision is appended to. [default: <home>/autoscale.jsonl]")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="FQ_AUTOSCALE_PLOT", show_envvar=True, help="Write a PNG of backlog and workers here on exit.")
@lanes_option
@click.pass_context
def autoscale(ctx: click.Context, interval_s: float, min_workers: int, max_workers: int | None,
              target_jobs_per_worker: float, tolerance: float, scale_out_cooldown_s: float,
              scale_in_cooldown_s: float, idle_to_zero_s: float, activation_jobs: int, floors: tuple[Any, ...],
              tz: str, workers_per_endpoint: float, kill_grace_s: float, decisions_path: Path | None,
              plot_path: Path | None, lanes: str) -> None:
    """Start and stop local worker processes with the queue: the scaling policy, run every --interval-s against
    the queue's statistics. Scale-in sends SIGTERM (a worker finishes its job first); SIGTERM or Ctrl-C here
    drains every worker and exits."""
    if ctx.invoked_subcommand is not None:
        return
    from framequeue.config import Settings
    from framequeue.scaling.autoscale.decisions import default_decisions_path
    from framequeue.scaling.autoscale.floors import LocalTime
    from framequeue.scaling.policy import PolicyConfig

    obj = _root_obj(ctx)
    log_level = str(obj.get("log_level") or os.environ.get("FQ_LOG_LEVEL") or "info")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stderr)
    home = obj.get("home")
    settings = Settings.from_env(home=Path(home) if home else None, lanes=lanes)
    if max_workers is None:
        max_workers = max(min_workers, os.cpu_count() or 1)
    if min_workers > max_workers:
        raise click.BadParameter(f"--min-workers {min_workers} > --max-workers {max_workers}")
    try:
        zone = LocalTime() if tz == "local" else ZoneInfo(tz)
    except (ValueError, KeyError) as exc:
        raise click.BadParameter(f"unknown time zone {tz!r}", param_hint="--tz") from exc
    config = PolicyConfig(
        target_jobs_per_worker=target_jobs_per_worker, tolerance=tolerance, min_workers=min_workers,
        max_workers=max_workers, scale_out_cooldown_s=scale_out_cooldown_s, scale_in_cooldown_s=scale_in_cooldown_s,
        idle_to_zero_s=idle_to_zero_s, activation_jobs=activation_jobs, floors=floors, tz=zone,
        workers_per_endpoint=workers_per_endpoint,
    )
    sys.exit(_run(settings, config, log_level, interval_s, settings.drain_s + kill_grace_s,
                  decisions_path or default_decisions_path(settings.home), plot_path))


def _run(settings: Any, config: Any, log_level: str, interval_s: float, kill_after_s: float, decisions: Path,
         plot_path: Path | None) -> int:
    from framequeue.metrics import PoolMetrics
    from framequeue.scaling.autoscale.decisions import plot_decisions
    from framequeue.scaling.autoscale.local import worker_launcher
    from framequeue.scaling.autoscale.loop import Autoscaler
    from framequeue.scaling.autoscale.observe import QueueObserver
    from framequeue.worker.pool import settings_env

    broker, store = _open(settings)
    # as under `up`: the workers write into one folder and this process serves them all on FQ_METRICS_PORT
    # (each worker opening that port itself would fail from the second one on)
    metrics = PoolMetrics(settings.home / "metrics-autoscale")
    metrics.reset()
    stop_metrics = metrics.serve(settings.metrics_port, settings.metrics_host) if settings.metrics_port else None
    worker_env = {**settings_env(replace(settings, metrics_port=0)), **metrics.env()}
    stop = threading.Event()

    def on_signal(signum: int, _: Any) -> None:
        log.info("signal %d: stopping; the workers drain", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from framequeue.brokers.urls import parse_lanes

    # a group's supervisor: its workers receive from its lanes (FQ_LANES, in worker_env) and it scales on theirs
    observer = QueueObserver(broker, store, lanes=parse_lanes(settings.lanes))
    scaler = Autoscaler(config, observer, worker_launcher(worker_env, log_level),
                        decisions_path=decisions, kill_after_s=kill_after_s)
    log.info("framequeue autoscale: %d..%d workers, every %g s, home %s, decisions in %s", config.min_workers,
             config.max_workers, interval_s, settings.home, decisions)
    try:
        scaler.run(stop, interval_s)
    finally:
        scaler.shutdown()
        broker.close()
        store.close()
        if stop_metrics is not None:
            stop_metrics()
        if plot_path is not None:
            plot_decisions(decisions, plot_path)
            log.info("wrote %s", plot_path)
    return 0


@reports_errors
def _open(settings: Any) -> tuple[Any, Any]:
    """The queue to observe and the job store to count running jobs in."""
    from framequeue.brokers import open_broker
    from framequeue.jobstore import open_jobstore

    broker = open_broker(settings.broker_url)
    return broker, open_jobstore(settings.database_url, lambda job: b"{}")  # never renders: it only reads


@autoscale.command("plot")
@click.argument("decisions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def plot(decisions: Path, out: Path) -> None:
    """Picture a decisions file (backlog and workers over time) as a PNG."""
    from framequeue.scaling.autoscale.decisions import plot_decisions

    plot_decisions(decisions, out)
    click.echo(f"wrote {out}")

