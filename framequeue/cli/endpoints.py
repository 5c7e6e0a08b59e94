"""The client commands on endpoints: `endpoints` (async endpoints, SageMaker-style) and `model-endpoints`
(the registry of where each model version runs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from framequeue.cli.common import client, parse_params, reports_errors, server_option
from framequeue.cli.output import emit_many, emit_one, output_option, quiet_option


@click.group()
def endpoints() -> None:
    """Async endpoints: a name for a pipeline and where its answers go (SageMaker-style)."""


@endpoints.command("create")
@click.argument("name")
@click.option("--pipeline", default="detect")
@click.option("--param", "params", multiple=True, help="Pipeline parameter NAME=VALUE (JSON values), repeatable.")
@click.option("--output-path", required=True, help="s3://bucket/prefix for the answers (<InferenceId>.out).")
@click.option("--failure-path", default=None, help="s3://bucket/prefix for failure documents [default: output path].")
@click.option("--success-webhook", default=None, help="URL notified when an invocation succeeds.")
@click.option("--error-webhook", default=None, help="URL notified when an invocation fails, expires or is cancelled.")
@click.option("--max-concurrent-invocations", default=1, type=int,
              help="Invocations of this endpoint one worker runs at a time.")
@click.option("--retention-s", type=float, default=None,
              help="Seconds after an invocation ends when its files are deleted [default: the server's].")
@output_option(default="json")
@quiet_option("endpoint name")
@server_option
@reports_errors
def endpoints_create(name: str, pipeline: str, params: tuple[str, ...], output_path: str, failure_path: str | None,
                     success_webhook: str | None, error_webhook: str | None, max_concurrent_invocations: int,
                     retention_s: float | None, output: str, quiet: bool, server: str) -> None:
    """Create endpoint NAME; boto3's sagemaker-runtime invoke_endpoint_async then reaches it."""
    body = {"name": name, "pipeline": pipeline, "params": parse_params(params), "output_path": output_path,
            "failure_path": failure_path, "success_webhook": success_webhook, "error_webhook": error_webhook,
            "max_concurrent_invocations": max_concurrent_invocations, "retention_s": retention_s}
    with client(server) as c:
        created = c.create_endpoint(body)
    emit_one(created, output, lambda ep: _endpoints_table([ep]), quiet=quiet, id_key="name")


def _endpoints_table(rows: Sequence[Mapping[str, Any]]) -> None:
    click.echo(f"{'NAME':24} {'PIPELINE':9} OUTPUT PATH")
    for ep in rows:
        click.echo(f"{ep['name']:24} {ep['pipeline']:9} {ep['output_path']}")


@endpoints.command("list")
@output_option()
@quiet_option("endpoint names")
@server_option
@reports_errors
def endpoints_list(output: str, quiet: bool, server: str) -> None:
    """List endpoints (-o json: an array)."""
    with client(server) as c:
        page = c.endpoints()
    emit_many(page["endpoints"], output, _endpoints_table, quiet=quiet, id_key="name")


@endpoints.command("delete")
@click.argument("name")
@server_option
@reports_errors
def endpoints_delete(name: str, server: str) -> None:
    """Delete endpoint NAME (invocations already queued still run)."""
    with client(server) as c:
        c.delete_endpoint(name)
    click.echo(f"endpoint {name} deleted")


# -- model endpoint registry ---------------------------------------------------------------------------

@click.group("model-endpoints")
def model_endpoints() -> None:
    """Where each (model, version) runs: OIP v2 servers or `local`, with A/B weights."""


def _model_endpoints_table(rows: Sequence[Mapping[str, Any]]) -> None:
    click.echo(f"{'ID':22} {'MODEL':16} {'VER':5} {'WEIGHT':>8} {'STATE':9} URL")
    for ep in rows:
        _echo_model_endpoint(ep)


def _echo_model_endpoint(ep: Mapping[str, Any]) -> None:
    click.echo(f"{ep['id']:22} {ep['model']:16} v{ep['version']:<4} {ep['weight']:>8g} {ep['state']:9} {ep['url']}")


@model_endpoints.command("register")
@click.argument("model")
@click.argument("version", type=int)
@click.argument("url")
@click.option("--weight", default=1.0, type=float, help="Share of the model's jobs, relative to its other endpoints.")
@output_option()
@quiet_option("endpoint id")
@server_option
@reports_errors
def model_endpoints_register(model: str, version: int, url: str, weight: float, output: str, quiet: bool,
                             server: str) -> None:
    """Register URL (http(s)://host:port, grpc://host:port, or `local`) for VERSION of MODEL."""
    with client(server) as c:
        ep = c.register_model_endpoint(model, version, url, weight)
    emit_one(ep, output, _echo_model_endpoint, quiet=quiet)


@model_endpoints.command("list")
@click.option("--model", default=None, help="Only this model's endpoints.")
@output_option()
@quiet_option("endpoint ids")
@server_option
@reports_errors
def model_endpoints_list(model: str | None, output: str, quiet: bool, server: str) -> None:
    """List model endpoints (-o json: an array)."""
    with client(server) as c:
        rows = c.model_endpoints(model)
    emit_many(rows, output, _model_endpoints_table, quiet=quiet)


@model_endpoints.command("reweigh")
@click.argument("endpoint_id")
@click.argument("weight", type=float)
@output_option()
@quiet_option("endpoint id")
@server_option
@reports_errors
def model_endpoints_reweigh(endpoint_id: str, weight: float, output: str, quiet: bool, server: str) -> None:
    """Set the weight of an endpoint (0: no new jobs are routed to it)."""
    with client(server) as c:
        ep = c.update_model_endpoint(endpoint_id, weight=weight)
    emit_one(ep, output, _echo_model_endpoint, quiet=quiet)


@model_endpoints.command("drain")
@click.argument("endpoint_id")
@output_option()
@quiet_option("endpoint id")
@server_option
@reports_errors
def model_endpoints_drain(endpoint_id: str, output: str, quiet: bool, server: str) -> None:
    """Route no new jobs to an endpoint (jobs already given its version still run)."""
    with client(server) as c:
        ep = c.update_model_endpoint(endpoint_id, state="draining")
    emit_one(ep, output, _echo_model_endpoint, quiet=quiet)


@model_endpoints.command("remove")
@click.argument("endpoint_id")
@server_option
@reports_errors
def model_endpoints_remove(endpoint_id: str, server: str) -> None:
    """Remove an endpoint from the registry."""
    with client(server) as c:
        c.remove_model_endpoint(endpoint_id)
    click.echo(f"model endpoint {endpoint_id} removed")
