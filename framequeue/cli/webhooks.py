"""The client commands on webhook events: `deliveries` (a job's events: list, replay) and `webhooks` (URLs
disabled by a 410 Gone: list, enable)."""

from __future__ import annotations

import json

import click

from framequeue.cli.common import client, reports_errors, server_option


@click.group()
def deliveries() -> None:
    """A job's webhook events: list them, replay one."""


@deliveries.command("list")
@click.argument("job_id")
@server_option
@reports_errors
def deliveries_list(job_id: str, server: str) -> None:
    """List a job's webhook events (JSON lines): state, attempts, last error, next attempt."""
    with client(server) as c:
        for d in c.deliveries(job_id):
            click.echo(json.dumps(d))


@deliveries.command("replay")
@click.argument("event_id")
@server_option
@reports_errors
def deliveries_replay(event_id: str, server: str) -> None:
    """Deliver an event again now, with the same webhook-id."""
    with client(server) as c:
        click.echo(json.dumps(c.replay(event_id)))


@click.group()
def webhooks() -> None:
    """Webhook URLs disabled by a 410 Gone answer (admin key): list them, enable one again."""


@webhooks.command("disabled")
@server_option
@reports_errors
def webhooks_disabled(server: str) -> None:
    with client(server) as c:
        for d in c.disabled_webhooks():
            click.echo(json.dumps(d))


@webhooks.command("enable")
@click.argument("url")
@server_option
@reports_errors
def webhooks_enable(url: str, server: str) -> None:
    with client(server) as c:
        c.enable_webhook(url)
    click.echo(f"enabled {url}")
