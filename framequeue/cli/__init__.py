"""One command; subcommands mirror the architecture: up | api | worker | submit | jobs | job | watch | wait |
cancel | queue | deliveries | webhooks | endpoints | model-endpoints | keys | purge | models | serve-models |
simulate | autoscale | demo. One module per group of subcommands; common.py holds what they share (one way an
error ends a command), output.py how records are printed (-o, -q). Every flag names its environment variable
in --help."""

from __future__ import annotations

import click

from framequeue.cli import (
    autoscale,
    demo,
    endpoints,
    jobs,
    keys,
    models,
    purge,
    queue,
    serve_models,
    server,
    simulate,
    webhooks,
)
from framequeue.config import env_var

__all__ = ["main"]


@click.group(context_settings={"show_default": True, "max_content_width": 110})
@click.option("--home", envvar=env_var("home"), show_envvar=True, default=None,
              help="Folder of the embedded deployment (SQLite file, objects, models). [default: .framequeue]")
@click.option("--log-level", envvar="FQ_LOG_LEVEL", show_envvar=True, default="info")
@click.option("--api-key", envvar="FQ_API_KEY", show_envvar=True, default=None,
              help="API key (fq_…) the client commands send; not needed while the API runs open.")
@click.version_option(package_name="framequeue")
@click.pass_context
def main(ctx: click.Context, home: str | None, log_level: str, api_key: str | None) -> None:
    """framequeue: asynchronous deep-learning inference on large media, video first."""
    ctx.obj = {"home": home, "log_level": log_level, "api_key": api_key}


for _command in (
    server.up, server.api, server.worker,
    jobs.submit, jobs.jobs, jobs.job, jobs.watch, jobs.wait, jobs.cancel, queue.queue,
    webhooks.deliveries, webhooks.webhooks,
    endpoints.endpoints, endpoints.model_endpoints,
    keys.keys, purge.purge, models.models,
    serve_models.serve_models, simulate.simulate, autoscale.autoscale,
    demo.demo,
):
    main.add_command(_command)
