"""`framequeue keys`: API keys, straight on the job store (the operator's tool; no running API needed)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import click

from framequeue.cli.common import reports_errors, settings_of
from framequeue.cli.output import emit_many, output_option, quiet_option


@click.group()
def keys() -> None:
    """API keys, straight on the job store (no running API needed): create, list, revoke."""


def _keys(ctx: click.Context) -> Any:
    from framequeue.jobstore import open_jobstore
    from framequeue.tenants.keys import Keys

    def no_jobs(_: Any) -> bytes:
        raise RuntimeError("`framequeue keys` writes no job")

    store = open_jobstore(settings_of(ctx).database_url, no_jobs)
    ctx.call_on_close(store.close)
    return Keys(store)


@keys.command("create")
@click.option("--tenant", required=True, help="The tenant the key acts for (its jobs, uploads, quota).")
@click.option("--scope", required=True, type=click.Choice(["read", "submit", "admin"]),
              help="read: read jobs; submit: also upload, submit, cancel; admin: also keys and endpoints.")
@click.option("--name", default="", help="A label for the key (who or what uses it).")
@click.option("-o", "--output", type=click.Choice(["key", "json"]), default="key",
              help="key: the key alone; json: its record with the key as `key`.")
@click.pass_context
@reports_errors
def keys_create(ctx: click.Context, tenant: str, scope: str, name: str, output: str) -> None:
    """Create a key and print it, once: only its hash is kept."""
    row, key = _keys(ctx).create(tenant, scope, name)
    if output == "json":
        click.echo(json.dumps({**row.to_dict(), "key": key}, indent=2))
        return
    click.echo(key)
    click.echo(f"key {row.id} for tenant {row.tenant}, scope {row.scopes}: store it now, it is not shown again",
               err=True)


def _keys_table(rows: Sequence[Mapping[str, Any]]) -> None:
    click.echo(f"{'ID':12}  {'TENANT':20} {'SCOPE':6} {'STATE':7} NAME")
    for k in rows:
        state = "revoked" if k["revoked_at_s"] is not None else "active"
        click.echo(f"{k['id']:12}  {k['tenant']:20} {k['scope']:6} {state:7} {k['name']}")


@keys.command("list")
@click.option("--tenant", default=None, help="Only this tenant's keys.")
@output_option()
@quiet_option("key ids")
@click.pass_context
@reports_errors
def keys_list(ctx: click.Context, tenant: str | None, output: str, quiet: bool) -> None:
    """List keys (never the keys themselves; -o json: an array)."""
    emit_many(_keys(ctx).list(tenant), output, _keys_table, quiet=quiet)


@keys.command("revoke")
@click.argument("key_id")
@click.pass_context
@reports_errors
def keys_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke key KEY_ID for good (requests with it answer 401 at once)."""
    _keys(ctx).revoke(key_id)
    click.echo(f"key {key_id} revoked")
