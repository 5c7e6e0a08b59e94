"""Several jobs at once for `submit FILE...` and `wait ID...`: what to submit (the files, or a manifest),
submitting them, and waiting until every one has ended. Submission goes one job at a time through
`submit_all`, the one place to change when the API grows a batch endpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framequeue.client import TERMINAL, Client, JobRecord
from framequeue.errors import InvalidParams

#: seconds between two looks at the jobs `wait` still waits for
WAIT_POLL_S = 1.0


@dataclass(frozen=True)
class Submission:
    """One job to submit: the local file to upload and the job's body less its input."""

    path: Path
    body: dict[str, Any]
    idempotency_key: str | None = None


def from_files(paths: Sequence[Path], body: dict[str, Any], idempotency_key: str | None) -> list[Submission]:
    """One submission per file with the same body; with several files, the idempotency key is suffixed with
    each file's position (KEY-1, KEY-2, ...) so that each job has its own."""
    if len(paths) == 1:
        return [Submission(paths[0], body, idempotency_key)]
    return [Submission(p, body, None if idempotency_key is None else f"{idempotency_key}-{i}")
            for i, p in enumerate(paths, 1)]


def from_manifest(manifest: Path, body: dict[str, Any], idempotency_key: str | None = None) -> list[Submission]:
    """A JSON Lines manifest, one job a line: {"file": path relative to the manifest, and optionally
    "pipeline", "params" (merged over the command line's), "attributes", "idempotency_key" (else
    idempotency_key-N, N the job's position)}; blank lines and lines starting with # are skipped."""
    out: list[Submission] = []
    for n, line in enumerate(manifest.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise InvalidParams(f"{manifest}:{n}: not JSON: {exc}") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise InvalidParams(f'{manifest}:{n}: each line is an object with a "file"')
        if not isinstance(entry.get("params", {}), dict):
            raise InvalidParams(f'{manifest}:{n}: "params" is an object')
        path = manifest.parent / entry["file"]
        if not path.is_file():
            raise InvalidParams(f"{manifest}:{n}: {path} is not a file")
        job = {**body, "params": {**body.get("params", {}), **entry.get("params", {})}}
        for name in ("pipeline", "attributes"):
            if name in entry:
                job[name] = entry[name]
        key = entry.get("idempotency_key")
        if key is None and idempotency_key is not None:
            key = f"{idempotency_key}-{len(out) + 1}"
        out.append(Submission(path, job, key))
    if not out:
        raise InvalidParams(f"{manifest} names no file")
    return out


def submit_all(client: Client, submissions: Sequence[Submission],
               on_submitted: Callable[[JobRecord], None] | None = None) -> list[JobRecord]:
    """Upload and submit each, in order; their records. A failure stops here (the jobs already submitted
    stay queued, and were shown through on_submitted)."""
    records = []
    for s in submissions:
        key = client.upload(s.path)["key"]
        record = client.submit({**s.body, "input": {"key": key}}, s.idempotency_key)
        if on_submitted is not None:
            on_submitted(record)
        records.append(record)
    return records


def wait_all(client: Client, job_ids: Sequence[str], timeout_s: float | None,
             on_end: Callable[[JobRecord], None] | None = None,
             poll_s: float = WAIT_POLL_S) -> tuple[list[JobRecord], bool]:
    """Look at the jobs every poll_s until all have ended or timeout_s has passed; their last records (in
    job_ids' order) and whether all ended. on_end sees each job once, when it is first seen ended."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    records: dict[str, JobRecord] = {}
    pending = list(dict.fromkeys(job_ids))
    while True:
        still = []
        for job_id in pending:
            record = records[job_id] = client.job(job_id)
            if record["status"] in TERMINAL:
                if on_end is not None:
                    on_end(record)
            else:
                still.append(job_id)
        pending = still
        if not pending or (deadline is not None and time.monotonic() >= deadline):
            return [records[i] for i in job_ids], not pending
        pause_s = poll_s if deadline is None else min(poll_s, max(0.0, deadline - time.monotonic()))
        time.sleep(pause_s)
