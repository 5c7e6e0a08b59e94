"""Several jobs at once for `submit FILE...` and `wait ID...`: what to submit (the files, or a manifest),
submitting them (several at once through POST /v1/jobs:batch), and waiting until every one has ended."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framequeue.client import TERMINAL, Client, JobRecord
from framequeue.errors import FrameQueueError, InvalidParams, from_code

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
    """Upload each file, in order, then submit them all in one batch call (one job: a plain submit); their
    records. A failure raises its error after the jobs before it, and the valid others of the batch, were
    queued (and shown through on_submitted)."""
    if len(submissions) == 1:
        s = submissions[0]
        record = client.submit({**s.body, "input": {"key": client.upload(s.path)["key"]}}, s.idempotency_key)
        if on_submitted is not None:
            on_submitted(record)
        return [record]
    bodies: list[dict[str, Any]] = []
    failure: FrameQueueError | None = None
    for s in submissions:
        try:
            bodies.append({**s.body, "input": {"key": client.upload(s.path)["key"]}})
        except FrameQueueError as exc:
            failure = exc  # the files before it are still submitted
            break
    records: list[JobRecord] = []
    first_error: FrameQueueError | None = None
    if bodies:
        keys = [s.idempotency_key for s in submissions[:len(bodies)]]
        for item, s in zip(client.submit_many(bodies, keys), submissions, strict=False):
            if "job" in item:
                if on_submitted is not None:
                    on_submitted(item["job"])
                records.append(item["job"])
            elif first_error is None:
                error = item.get("error", {})
                first_error = from_code(error.get("code", "internal_error"), f"{s.path}: {error.get('message')}")
    failure = first_error or failure
    if failure is not None:
        raise failure
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
