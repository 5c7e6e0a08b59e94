"""The client commands on jobs: `submit`, `jobs`, `job`, `watch`, `cancel` (over the HTTP API)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from framequeue.cli.common import EXIT_JOB_FAILED, client, parse_params, reports_errors, server_option


@click.command()
@click.argument("video", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pipeline", default="detect")
@click.option("--sample-fps", type=float, default=None, help="Frames analysed per second [default: every frame].")
@click.option("--param", "params", multiple=True, help="Pipeline parameter NAME=VALUE (JSON values), repeatable.")
@click.option("--webhook", default=None, help="URL notified when the job ends.")
@click.option("--idempotency-key", default=None)
@click.option("--retention-s", type=float, default=None,
              help="Seconds after the job ends when its files are deleted [default: the server's].")
@click.option("--wait/--no-wait", default=False, help="Follow the job's event stream until it ends (exit 3 unless "
              "it succeeded).")
@click.option("--download", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --wait: download the outputs into this folder.")
@server_option
@reports_errors
def submit(video: Path, pipeline: str, sample_fps: float | None, params: tuple[str, ...], webhook: str | None,
           idempotency_key: str | None, retention_s: float | None, wait: bool, download: Path | None,
           server: str) -> None:
    """Upload VIDEO and submit it to a pipeline."""
    from framequeue.cli.progress import follow

    body_params = parse_params(params)
    if sample_fps is not None:
        body_params["sample_fps"] = sample_fps
    with client(server) as c:
        uploaded = c.upload(video)
        body: dict[str, Any] = {"pipeline": pipeline, "input": {"key": uploaded["key"]}, "params": body_params}
        if webhook:
            body["webhook"] = {"url": webhook}
        if retention_s is not None:
            body["retention_s"] = retention_s
        record = c.submit(body, idempotency_key)
        click.echo(f"job {record['id']} {record['status']}  outputs: {record['output_location']}")
        if not wait:
            return
        record = follow(c, record["id"])
        _print_outcome(c, record, download)


def _print_outcome(c: Any, record: dict[str, Any], download: Path | None) -> None:
    if record["status"] != "succeeded":
        err = record.get("error") or {}
        click.secho(f"job {record['id']} {record['status']}: [{err.get('code')}] {err.get('message')}", fg="red")
        sys.exit(EXIT_JOB_FAILED)
    click.secho(f"job {record['id']} succeeded", fg="green")
    for name, key in record["outputs"].items():
        if download is not None:
            path = c.download(record["id"], name, download / record["id"])
            click.echo(f"  {name:14} {path}")
        else:
            click.echo(f"  {name:14} {key}")


@click.command()
@click.option("--status", default=None, help="queued, running, succeeded, failed, cancelled or expired.")
@click.option("--limit", default=20, type=int)
@server_option
@reports_errors
def jobs(status: str | None, limit: int, server: str) -> None:
    """List jobs, newest first."""
    with client(server) as c:
        page = c.jobs(status, limit)
    click.echo(f"{'ID':32}  {'STATUS':10} {'PIPELINE':9} {'PROGRESS':>9}  CREATED")
    for rec in page["jobs"]:
        pct = rec["progress"]["percent"]
        click.echo(f"{rec['id']:32}  {rec['status']:10} {rec['pipeline']:9} "
                   f"{'' if pct is None else f'{pct:.0f}%':>9}  {rec['created_at']}")


@click.command()
@click.argument("job_id")
@click.option("--download", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Download the job's outputs into this folder.")
@server_option
@reports_errors
def job(job_id: str, download: Path | None, server: str) -> None:
    """Show one job's record (JSON)."""
    with client(server) as c:
        record = c.job(job_id)
        click.echo(json.dumps(record, indent=2))
        if download is not None and record["status"] == "succeeded":
            for name in record["outputs"]:
                click.echo(f"{name}: {c.download(job_id, name, download / job_id)}", err=True)


@click.command()
@click.argument("job_id")
@click.option("--download", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Download the outputs into this folder once the job succeeds.")
@server_option
@reports_errors
def watch(job_id: str, download: Path | None, server: str) -> None:
    """Follow JOB_ID's progress live (its event stream) until it ends: exit 0 when it succeeded, 3 when it
    failed, was cancelled or expired."""
    from framequeue.cli.progress import follow

    with client(server) as c:
        record = follow(c, job_id)
        _print_outcome(c, record, download)


@click.command()
@click.argument("job_id")
@server_option
@reports_errors
def cancel(job_id: str, server: str) -> None:
    """Cancel a queued or running job."""
    with client(server) as c:
        record = c.cancel(job_id)
    state = "cancel requested" if record["status"] == "running" else record["status"]
    click.echo(f"job {job_id}: {state}")
