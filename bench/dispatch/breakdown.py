"""Reads what bench.dispatch.probe wrote during a burst and says where a framequeue job's time goes:
per job, in the API (submit) and in a worker (one receive -> ack cycle), means and medians in ms."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

#: (label, probe op) for the API side, in request order
API_STEPS = [
    ("HTTP POST /v1/jobs, in the app", "http POST /v1/jobs"),
    ("  JobService.submit", "service.submit"),
    ("    input exists? (object store)", "objects.size"),
    ("    insert job row (store.create)", "store.create"),
    ("    publish id (broker.publish)", "broker.publish"),
    ("    mark published (store.mark_published)", "store.mark_published"),
]


def _load(probe_dir: Path, role: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(probe_dir.glob(f"{role}-*.json"))]


def _merge(dumps: list[dict[str, Any]]) -> dict[str, list[float]]:
    ops: dict[str, list[float]] = {}
    for d in dumps:
        for name, values in d["ops"].items():
            ops.setdefault(name, []).extend(values)
    return ops


def _row(label: str, values: list[float], jobs: int) -> dict[str, Any]:
    """Mean per job (total / jobs: a step done twice per job counts twice) and the median of one call."""
    return {
        "step": label,
        "calls_per_job": len(values) / jobs if jobs else 0.0,
        "ms_per_job": 1000.0 * sum(values) / jobs if jobs else 0.0,
        "p50_ms": 1000.0 * statistics.median(values) if values else None,
    }


def _derived(label: str, total_s: float, jobs: int) -> dict[str, Any]:
    """A row computed from others (a difference or a share): a mean per job only."""
    return {"step": label, "calls_per_job": None, "ms_per_job": 1000.0 * total_s / jobs if jobs else 0.0,
            "p50_ms": None}


def _child_runs(probe_dir: Path) -> list[float]:
    """Seconds each job spent in sandbox.run_one, inside the media child."""
    path = probe_dir / "children.txt"
    if not path.exists():
        return []
    runs = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            runs.append(float(parts[2]) - float(parts[1]))
    return runs


def analyze(probe_dir: Path) -> dict[str, Any]:
    workers, apis = _load(probe_dir, "worker"), _load(probe_dir, "api")
    ops = _merge(workers)
    handle = ops.get("worker.handle", [])
    jobs = len(handle)
    if not jobs:
        return {"error": f"no worker timings in {probe_dir}"}

    def total(name: str) -> float:
        return sum(ops.get(name, []))

    # the child's runs since the reset: the last `jobs` lines (the warm-up's came first)
    runs = _child_runs(probe_dir)[-jobs:]
    supervise = total("worker._supervise")
    commit = total("worker._commit")
    commit_store = total("store.finish")
    commit_upload = max(0.0, commit - commit_store)
    claim = total("store.claim") + total("store.claim_fair")
    accounted = claim + total("worker._fetch") + supervise + commit + total("broker.ack")
    other = max(0.0, total("worker.handle") - accounted)
    starts, stops = ops.get("child.start", []), ops.get("child.stop", [])

    # rows that add up to the worker's cycle (receive + handle); an indented row is part of those above
    worker_rows = [
        _row("receive a message, waiting included (broker.receive)", ops.get("broker.receive", []), jobs),
        _row("claim: lease + fencing token, fair share (store.claim / claim_fair)",
             ops.get("store.claim", []) + ops.get("store.claim_fair", []), jobs),
        _row("copy input to scratch (_fetch)", ops.get("worker._fetch", []), jobs),
        _row("media child: hand over the job, wait for its answer (_supervise)", ops.get("worker._supervise", []),
             jobs),
        _row("  of which the pipeline ran in the child (sandbox.run_one)", runs, jobs),
        _row("  of which a progress write while the child runs", ops.get("store.report_progress", []), jobs),
        _row("  of which a new warm child was started (rare)", starts, jobs),
        _row("  of which a child was retired (rare)", stops, jobs),
        _derived("commit: store write (finish, with the final progress)", commit_store, jobs),
        _derived("commit: upload result (fsync), drop stale outputs", commit_upload, jobs),
        _row("ack (broker.ack)", ops.get("broker.ack", []), jobs),
        _derived("other (logging, scratch mkdir/rmtree)", other, jobs),
    ]
    cycle = total("broker.receive") + total("worker.handle")
    api_ops = _merge(apis)
    api_rows = [_row(label, api_ops.get(op, []), len(api_ops.get("service.submit", [])) or 1)
                for label, op in API_STEPS]
    http = api_ops.get("http POST /v1/jobs", [])
    submit = api_ops.get("service.submit", [])
    if http and submit:
        api_rows.insert(1, _derived("  framework (FastAPI, pydantic, threadpool)", max(0.0, sum(http) - sum(submit)),
                                    len(http)))
    return {
        "jobs": jobs,
        "worker_cycle_ms_per_job": 1000.0 * cycle / jobs,
        "worker_handle_ms_p50": 1000.0 * statistics.median(handle),
        "worker": worker_rows,
        "api": api_rows,
    }
