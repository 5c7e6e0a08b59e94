"""The server side: `up` (API and workers), `api` alone, one `worker`."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

import click

from framequeue.cli.common import lanes_option, reports_errors, settings_of, setup_logging
from framequeue.config import Settings, env_var

log = logging.getLogger("framequeue.up")

THREADS_HELP = (
    "Thread budget of one job, split between its decode, inference and encode pools (the three stages "
    "always run as three threads; below 4 each pool gets one)."
)

_host = click.option("--host", envvar=env_var("host"), show_envvar=True, default="127.0.0.1")
_port = click.option("--port", envvar=env_var("port"), show_envvar=True, default=8080, type=int)


@click.command()
@_host
@_port
@click.option("--workers", envvar=env_var("workers"), show_envvar=True, default=2, type=int,
              help="Worker processes (one job each).")
@click.option("--worker-threads", envvar=env_var("worker_threads"), show_envvar=True, default=1, type=int,
              help=THREADS_HELP)
@lanes_option
@click.pass_context
def up(ctx: click.Context, host: str, port: int, workers: int, worker_threads: int, lanes: str) -> None:
    """Start the API and a pool of workers (the embedded deployment by default)."""
    setup_logging(ctx.obj["log_level"])
    settings = settings_of(ctx, host=host, port=port, workers=workers, worker_threads=worker_threads, lanes=lanes)
    sys.exit(run_up(settings, ctx.obj["log_level"]))


@click.command()
@_host
@_port
@click.pass_context
def api(ctx: click.Context, host: str, port: int) -> None:
    """Run the HTTP API alone (with the webhook dispatcher and the reaper)."""
    setup_logging(ctx.obj["log_level"])
    settings = settings_of(ctx, host=host, port=port)
    import uvicorn

    from framequeue.api.app import create_app

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=ctx.obj["log_level"])


@click.command()
@click.option("--worker-threads", envvar=env_var("worker_threads"), show_envvar=True, default=1, type=int,
              help=THREADS_HELP)
@click.option("--max-jobs", default=0, type=int,
              help="Exit after this many jobs (a Kubernetes Job per video: 1); 0 runs until SIGTERM.")
@lanes_option
@click.pass_context
@reports_errors
def worker(ctx: click.Context, worker_threads: int, max_jobs: int, lanes: str) -> None:
    """Run one worker: take jobs until SIGTERM, then finish or hand back the current one and exit."""
    setup_logging(ctx.obj["log_level"])
    settings = settings_of(ctx, worker_threads=worker_threads, lanes=lanes)
    from framequeue.runtime import open_runtime
    from framequeue.worker.loop import Worker

    rt = open_runtime(settings)
    w = Worker(rt, max_jobs=max_jobs)

    def on_signal(signum: int, _: Any) -> None:
        logging.getLogger("framequeue.worker").info("signal %d: draining", signum)
        w.drain()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        w.run()
    finally:
        rt.close()


def run_up(settings: Settings, log_level: str) -> int:
    """The API in this process and a pool of worker processes beside it, stopped together."""
    import uvicorn

    from framequeue.api.app import create_app
    from framequeue.worker.pool import WorkerPool

    pool = WorkerPool(settings, log_level)
    pool.start()
    log.info("framequeue up: API on http://%s:%d, %d worker(s), home %s", settings.host, settings.port,
             settings.workers, settings.home)
    # uvicorn re-raises the SIGTERM it caught once it has shut down; with the default handler that would
    # end this process before the workers are stopped (orphaning them): exit through `finally` instead
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(create_app(settings, workers_metrics_dir=pool.metrics.path), host=settings.host,
                    port=settings.port, log_level=log_level)
    finally:
        log.info("stopping workers (they finish or hand back their jobs)")
        pool.stop()
    return 0
