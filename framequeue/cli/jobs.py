"""The client commands on jobs: `submit`, `jobs`, `job`, `watch`, `wait`, `cancel` (over the HTTP API)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from framequeue.cli.common import EXIT_JOB_FAILED, EXIT_TIMEOUT, client, parse_params, reports_errors, server_option
from framequeue.cli.output import emit_many, emit_one, output_option, quiet_option
from framequeue.client import TERMINAL, Client, JobRecord
from framequeue.errors import FrameQueueError

_download = click.option("--download", type=click.Path(file_okay=False, path_type=Path), default=None,
                         help="Download the outputs of the jobs that succeeded into this folder (one folder a job).")


@click.command()
@click.argument("videos", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help='JSON Lines, one job a line: {"file": path relative to the manifest, optional "pipeline", '
                   '"params", "attributes", "idempotency_key"}; the options below are its defaults.')
@click.option("--pipeline", default="detect")
@click.option("--sample-fps", type=float, default=None, help="Frames analysed per second [default: every frame].")
@click.option("--param", "params", multiple=True, help="Pipeline parameter NAME=VALUE (JSON values), repeatable.")
@click.option("--webhook", default=None, help="URL notified when a job ends.")
@click.option("--idempotency-key", default=None,
              help="Makes a repeated submit answer the first job; with several files, KEY-1, KEY-2, ... by position.")
@click.option("--retention-s", type=float, default=None,
              help="Seconds after a job ends when its files are deleted [default: the server's].")
@click.option("--priority", type=click.Choice(["high", "normal", "low"]), default=None,
              help="The jobs' lane: a worker takes a waiting higher-priority job first [default: normal].")
@click.option("--wait/--no-wait", default=False, help="Wait until every job ends (exit 3 unless all succeeded).")
@_download
@output_option()
@quiet_option("job ids")
@server_option
@reports_errors
def submit(videos: tuple[Path, ...], manifest: Path | None, pipeline: str, sample_fps: float | None,
           params: tuple[str, ...], webhook: str | None, idempotency_key: str | None, retention_s: float | None,
           priority: str | None, wait: bool, download: Path | None, output: str, quiet: bool, server: str) -> None:
    """Upload each VIDEO (or the manifest's files) and submit it to a pipeline, one job a file, in order.
    -o json prints an array of the job records (the final ones with --wait)."""
    from framequeue.cli import batch

    if bool(videos) == (manifest is not None):
        raise click.UsageError("give one or more VIDEOs, or --manifest")
    body: dict[str, Any] = {"pipeline": pipeline, "params": parse_params(params)}
    if sample_fps is not None:
        body["params"]["sample_fps"] = sample_fps
    if webhook:
        body["webhook"] = {"url": webhook}
    if retention_s is not None:
        body["retention_s"] = retention_s
    if priority is not None:
        body["priority"] = priority
    todo = (batch.from_manifest(manifest, body, idempotency_key) if manifest is not None
            else batch.from_files(videos, body, idempotency_key))
    people = output == "table" and not quiet
    submitted: list[JobRecord] = []

    def on_submitted(record: JobRecord) -> None:
        submitted.append(record)
        if people:
            _print_submitted(record)

    with client(server) as c:
        try:
            records = batch.submit_all(c, todo, on_submitted)
        except FrameQueueError:
            if submitted and not people:  # the jobs queued before the failure are still worth knowing
                emit_many(submitted, output, _submitted_table, quiet=quiet)
            raise
        if not wait:
            if not people:
                emit_many(records, output, _submitted_table, quiet=quiet)
            return
        if len(records) == 1 and people:
            from framequeue.cli.progress import follow

            records = [follow(c, records[0]["id"])]
        else:
            records, _ = batch.wait_all(c, [r["id"] for r in records], None)
        _finish(c, records, output, quiet, download)


def _print_submitted(record: Mapping[str, Any]) -> None:
    click.echo(f"job {record['id']} {record['status']}  outputs: {record['output_location']}")


def _submitted_table(records: Sequence[Mapping[str, Any]]) -> None:
    for record in records:
        _print_submitted(record)


def _finish(c: Client, records: Sequence[JobRecord], output: str, quiet: bool, download: Path | None,
            single: bool = False) -> None:
    """Download what succeeded, print the final records (single: the one record as an object), exit 3 unless
    all succeeded."""
    paths: dict[tuple[str, str], Path] = {}
    if download is not None:
        for record in records:
            if record["status"] == "succeeded":
                for name in record["outputs"]:
                    paths[record["id"], name] = c.download(record["id"], name, download / record["id"])

    def table(rows: Sequence[Mapping[str, Any]]) -> None:
        for record in rows:
            _print_outcome(record, paths)

    if single:
        emit_one(records[0], output, lambda record: table([record]), quiet=quiet)
    else:
        emit_many(records, output, table, quiet=quiet)
    if any(r["status"] != "succeeded" for r in records):
        sys.exit(EXIT_JOB_FAILED)


def _print_outcome(record: Mapping[str, Any], paths: Mapping[tuple[str, str], Path]) -> None:
    if record["status"] != "succeeded":
        err = record.get("error") or {}
        click.secho(f"job {record['id']} {record['status']}: [{err.get('code')}] {err.get('message')}", fg="red")
        return
    click.secho(f"job {record['id']} succeeded", fg="green")
    for name, key in record["outputs"].items():
        click.echo(f"  {name:14} {paths.get((record['id'], name), key)}")


def _jobs_table(records: Sequence[Mapping[str, Any]]) -> None:
    click.echo(f"{'ID':32}  {'STATUS':10} {'PIPELINE':9} {'PROGRESS':>9}  CREATED")
    for rec in records:
        pct = rec["progress"]["percent"]
        click.echo(f"{rec['id']:32}  {rec['status']:10} {rec['pipeline']:9} "
                   f"{'' if pct is None else f'{pct:.0f}%':>9}  {rec['created_at']}")


@click.command()
@click.option("--status", default=None, help="queued, running, succeeded, failed, cancelled or expired.")
@click.option("--limit", default=20, type=int)
@output_option()
@quiet_option("job ids")
@server_option
@reports_errors
def jobs(status: str | None, limit: int, output: str, quiet: bool, server: str) -> None:
    """List jobs, newest first (-o json: an array of job records)."""
    with client(server) as c:
        page = c.jobs(status, limit)
    emit_many(page["jobs"], output, _jobs_table, quiet=quiet)


def _job_table(record: Mapping[str, Any]) -> None:
    err = record.get("error") or {}
    rows = [("id", record["id"]), ("status", record["status"]), ("pipeline", record["pipeline"]),
            ("progress", record["progress"]["percent"]), ("created", record["created_at"]),
            ("started", record["started_at"]), ("finished", record["finished_at"]),
            ("error", f"[{err['code']}] {err['message']}" if err else None),
            ("outputs", record["output_location"]), *((f"  {k}", v) for k, v in record["outputs"].items())]
    for name, value in rows:
        click.echo(f"{name:16} {'' if value is None else value}")


@click.command()
@click.argument("job_id")
@_download
@output_option(default="json")
@quiet_option("job id")
@server_option
@reports_errors
def job(job_id: str, download: Path | None, output: str, quiet: bool, server: str) -> None:
    """Show one job's record (JSON unless -o table)."""
    with client(server) as c:
        record = c.job(job_id)
        emit_one(record, output, _job_table, quiet=quiet)
        if download is not None and record["status"] == "succeeded":
            for name in record["outputs"]:
                click.echo(f"{name}: {c.download(job_id, name, download / job_id)}", err=True)


@click.command()
@click.argument("job_id")
@_download
@output_option()
@quiet_option("job id")
@server_option
@reports_errors
def watch(job_id: str, download: Path | None, output: str, quiet: bool, server: str) -> None:
    """Follow JOB_ID's progress live (its event stream; a bar on a terminal) until it ends: exit 0 when it
    succeeded, 3 when it failed, was cancelled or expired. -o json prints the final record."""
    from framequeue.cli.progress import follow

    with client(server) as c:
        record = follow(c, job_id)
        _finish(c, [record], output, quiet, download, single=True)


@click.command()
@click.argument("job_ids", nargs=-1, required=True)
@click.option("--timeout-s", type=click.FloatRange(min=0), default=None,
              help="Give up after this many seconds (exit 5) [default: wait as long as it takes].")
@_download
@output_option()
@quiet_option("job ids")
@server_option
@reports_errors
def wait(job_ids: tuple[str, ...], timeout_s: float | None, download: Path | None, output: str, quiet: bool,
         server: str) -> None:
    """Block until every JOB_ID has ended: exit 0 when all succeeded, 3 when any failed, was cancelled or
    expired, 5 on --timeout-s. A count of ended jobs shows on a terminal; -o json prints the final records
    (an array, in the order given)."""
    from framequeue.cli import batch
    from framequeue.cli.progress import counter

    with client(server) as c:
        with counter(len(set(job_ids)), "jobs ended") as bar:
            records, ended = batch.wait_all(c, job_ids, timeout_s, lambda _: bar.update(1))
        if not ended:
            emit_many(records, output, _jobs_table, quiet=quiet)
            left = sum(r["status"] not in TERMINAL for r in records)
            click.secho(f"{left} of {len(records)} jobs had not ended after {timeout_s:g} s", fg="red", err=True)
            sys.exit(EXIT_TIMEOUT)
        _finish(c, records, output, quiet, download)


@click.command()
@click.argument("job_id")
@output_option()
@quiet_option("job id")
@server_option
@reports_errors
def cancel(job_id: str, output: str, quiet: bool, server: str) -> None:
    """Cancel a queued or running job (-o json: its record after the request)."""
    with client(server) as c:
        record = c.cancel(job_id)

    def table(rec: Mapping[str, Any]) -> None:
        state = "cancel requested" if rec["status"] == "running" else rec["status"]
        click.echo(f"job {job_id}: {state}")

    emit_one(record, output, table, quiet=quiet)
