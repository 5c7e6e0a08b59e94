"""`framequeue purge`: what the API's retention sweeper does (framequeue.retention), run by an operator
straight on the job store and the object store (no running API needed): list it with --dry-run, or do it
now, with --before to also expire the files of every job that ended before a moment."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from framequeue.cli.common import reports_errors, settings_of
from framequeue.errors import InvalidParams

if TYPE_CHECKING:
    from framequeue.retention import Swept


@click.command()
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("--before", default=None, metavar="ISO",
              help="Also expire the files of jobs that ended before this moment (ISO 8601, e.g. "
                   "2026-01-31T00:00:00Z), whatever their retention_s.")
@click.option("--records-before", default=None, metavar="ISO",
              help="Purge the records of jobs that ended before this moment, instead of those older than "
                   "FQ_RECORD_RETENTION_S.")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000),
              help="Jobs handled per pass (a dry run lists one pass of each kind).")
@click.pass_context
@reports_errors
def purge(ctx: click.Context, dry_run: bool, before: str | None, records_before: str | None, limit: int) -> None:
    """Delete the files of ended jobs past their retention_s, and purge records past FQ_RECORD_RETENTION_S:
    one JSON line per job, then the counts and bytes (on stderr)."""
    from framequeue.jobstore import open_jobstore
    from framequeue.retention import Sweeper
    from framequeue.storage import open_storage

    files_before_s = _epoch_s("--before", before)
    records_before_s = _epoch_s("--records-before", records_before)
    settings = settings_of(ctx)

    def no_jobs(_: Any) -> bytes:
        raise RuntimeError("`framequeue purge` writes no job event")

    store = open_jobstore(settings.database_url, no_jobs)
    ctx.call_on_close(store.close)
    sweeper = Sweeper(store, open_storage(settings.storage_url), record_retention_s=settings.record_retention_s,
                      batch=limit)
    totals = {"files": [0, 0, 0], "record": [0, 0, 0]}  # jobs, objects, bytes
    passes: tuple[tuple[str, Callable[[], list[Swept]]], ...] = (
        ("files", lambda: sweeper.expire_outputs(finished_before_s=files_before_s, dry_run=dry_run)),
        ("record", lambda: sweeper.purge_records(finished_before_s=records_before_s, dry_run=dry_run)),
    )
    for kind, one_pass in passes:
        while swept := one_pass():
            for s in swept:
                if not (dry_run or s.done):
                    continue  # another sweeper reported it
                click.echo(json.dumps({"job": s.job_id, "purge": kind, "objects": len(s.keys),
                                       "bytes": s.size_bytes, "keys": list(s.keys)}))
                totals[kind] = [totals[kind][0] + 1, totals[kind][1] + len(s.keys), totals[kind][2] + s.size_bytes]
            if dry_run:
                break
    verb = "would delete" if dry_run else "deleted"
    files, records = totals["files"], totals["record"]
    click.echo(f"{verb}: the files of {files[0]} jobs ({files[1]} objects, {files[2]} bytes); "
               f"{records[0]} job records ({records[1]} objects, {records[2]} bytes)", err=True)


def _epoch_s(flag: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidParams(f"{flag}: not an ISO 8601 moment: {value!r} (e.g. 2026-01-31T00:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()
