"""The client commands on webhook events: `deliveries` (a job's events: list, replay) and `webhooks` (URLs
disabled by a 410 Gone: list, enable)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from framequeue.cli.common import client, reports_errors, server_option
from framequeue.cli.output import emit_many, emit_one, output_option, quiet_option

#: what these commands printed before -o existed: JSON, one object a line
_LINES = ("jsonl", "json", "table")


@click.group()
def deliveries() -> None:
    """A job's webhook events: list them, replay one."""


def _deliveries_table(rows: Sequence[Mapping[str, Any]]) -> None:
    click.echo(f"{'ID':34} {'TYPE':10} {'STATE':10} {'ATTEMPTS':>8}  {'NEXT ATTEMPT':24} URL")
    for d in rows:
        click.echo(f"{d['id']:34} {d['type']:10} {d['state']:10} {d['attempts']:>8}  "
                   f"{d['next_attempt_at'] or '':24} {d['url']}")


@deliveries.command("list")
@click.argument("job_id")
@output_option(default="jsonl", formats=_LINES)
@quiet_option("event ids")
@server_option
@reports_errors
def deliveries_list(job_id: str, output: str, quiet: bool, server: str) -> None:
    """List a job's webhook events: state, attempts, last error, next attempt."""
    with client(server) as c:
        rows = c.deliveries(job_id)
    emit_many(rows, output, _deliveries_table, quiet=quiet)


@deliveries.command("replay")
@click.argument("event_id")
@output_option(default="jsonl", formats=_LINES)
@quiet_option("event id")
@server_option
@reports_errors
def deliveries_replay(event_id: str, output: str, quiet: bool, server: str) -> None:
    """Deliver an event again now, with the same webhook-id."""
    with client(server) as c:
        record = c.replay(event_id)
    emit_one(record, output, lambda d: _deliveries_table([d]), quiet=quiet)


@click.group()
def webhooks() -> None:
    """Webhook URLs disabled by a 410 Gone answer (admin key): list them, enable one again."""


def _disabled_table(rows: Sequence[Mapping[str, Any]]) -> None:
    click.echo(f"{'DISABLED AT':26} {'EVENT':34} URL")
    for d in rows:
        click.echo(f"{d['disabled_at'] or '':26} {d['event_id'] or '':34} {d['url']}")


@webhooks.command("disabled")
@output_option(default="jsonl", formats=_LINES)
@quiet_option("URLs")
@server_option
@reports_errors
def webhooks_disabled(output: str, quiet: bool, server: str) -> None:
    """List the disabled webhook URLs."""
    with client(server) as c:
        rows = c.disabled_webhooks()
    emit_many(rows, output, _disabled_table, quiet=quiet, id_key="url")


@webhooks.command("enable")
@click.argument("url")
@server_option
@reports_errors
def webhooks_enable(url: str, server: str) -> None:
    """Send to URL again (events written from now on; replay older ones)."""
    with client(server) as c:
        c.enable_webhook(url)
    click.echo(f"enabled {url}")
