"""`framequeue queue`: the queue's numbers and the caller's running jobs (GET /v1/queue, what the dashboard
draws)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from framequeue.cli.common import client, reports_errors, server_option
from framequeue.cli.output import emit_one, output_option, quiet_option


def _table(view: Mapping[str, Any]) -> None:
    for name, value in view["queue"].items():
        click.echo(f"{name:22} {'' if value is None else value}")
    running = view["running"]
    click.echo(f"\n{len(running)} running" + (":" if running else ""))
    for job in running:
        click.echo("  " + "  ".join(str(v) for k, v in job.items() if k in ("id", "pipeline", "worker")))


@click.command("queue")
@output_option()
@quiet_option("ids of the running jobs")
@server_option
@reports_errors
def queue(output: str, quiet: bool, server: str) -> None:
    """Show the queue (waiting, in flight, dead-lettered jobs, the oldest wait) and the running jobs; -o json
    prints GET /v1/queue's whole answer."""
    with client(server) as c:
        view = c.queue()
    if quiet:
        for job in view["running"]:
            click.echo(job["id"])
        return
    emit_one(view, output, _table)
