"""Dispatch overhead with a no-op job: framequeue on each store/broker pair vs Celery 5 and Dramatiq on Redis
and RabbitMQ, each peer bare and storing results, on this machine, one system at a time, in one run.

    .venv/bin/python -m bench.dispatch.run [--jobs 200] [--only celery,redis,framequeue:sqlite,...]

For each system: start it (framequeue: `framequeue api` + 2 `framequeue worker`; Celery: a prefork worker
with 2 processes; Dramatiq: 2 processes x 1 thread), warm it up, then
  burst  N jobs sent at once by 4 submitter threads, one job per call: jobs/s from the first send to the
         last job's end, and submit->start under that load (mostly queueing: N jobs wait for 2 workers);
  batch  the same N jobs in calls of --batch-size through the system's batching API (framequeue:
         Client.submit_many = POST /v1/jobs:batch; Celery: group(...).apply_async(); Dramatiq: group(...).run()),
         the calls spread over the submitter threads: jobs/s to the last job's end;
  idle   --idle-jobs jobs one at a time, each sent once the previous one finished and a pause passed:
         the client's submit call -> the job's start on an idle system (the dispatch latency).
The peers run bare (as before: no result stored) and storing results as framequeue stores a job's record:
Celery with a result backend and task_track_started (Redis on the Redis broker, PostgreSQL through its
SQLAlchemy backend on RabbitMQ), Dramatiq with its Results middleware on Redis and store_results=True.
CPU seconds per component (API, workers with their children, broker server, this driver) are read from
/proc over the burst, with what else the machine did meanwhile ("background"); a system whose burst ran
beside much background load is measured once more (time permitting). Then a second framequeue
pass with its processes timed (bench.dispatch.probe) says where a job's time goes.

Writes bench/results/dispatch.json and bench/results/dispatch.md (a section for BENCHMARKS.md). Every
queue, schema, stream and key a run creates carries the run's token and is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench.dispatch import breakdown
from bench.dispatch.common import RESULTS, System, log, rounded
from bench.dispatch.fq import FrameQueue, make_root
from bench.dispatch.measure import Phase, Result, Settings, measure
from bench.dispatch.servers import (
    FQ_PAIRS,
    cleanup_token,
    fq_available,
    fq_broker_url,
    fq_store_url,
    server_versions,
)

PEER_BROKERS = ("redis", "rabbitmq")
#: per broker, the peers' configurations in the order they run: (system, result backend; "" bare)
PEER_CONFIGS: dict[str, list[tuple[str, str]]] = {
    "redis": [("celery", ""), ("dramatiq", ""), ("celery", "redis"), ("dramatiq", "redis")],
    "rabbitmq": [("celery", ""), ("dramatiq", ""), ("celery", "postgres"), ("dramatiq", "redis")],
}
#: a re-run is started only with this much of the time budget left (one system takes 20-45 s; the
#: breakdown passes and the fork-cost test after the systems take about 90 s)
RERUN_RESERVE_S = 150.0
PACKAGES = ("framequeue", "celery", "kombu", "amqp", "dramatiq", "pika", "redis", "psycopg", "aio-pika", "nats-py",
            "uvicorn", "fastapi", "sqlalchemy")


def _servers(store: str, broker: str) -> set[str]:
    return {s for s in (store, broker) if s != "sqlite" and s}


def _peer_available(broker: str, results: str = "") -> str | None:
    """None when the broker (and the result backend's server) answers; else why not, in one line."""
    try:
        for server in sorted({broker, results} - {""}):
            if server == "redis":
                import redis

                redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=3).ping()
            elif server == "rabbitmq":
                import amqp

                conn = amqp.Connection("127.0.0.1:5672", userid="guest", password="guest", connect_timeout=3)
                conn.connect()
                conn.close()
            else:
                import psycopg
                import sqlalchemy  # noqa: F401 - Celery's database backend

                psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=3).close()
    except ImportError as exc:
        return f"{exc} (pip install sqlalchemy for Celery's database result backend)"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cfg = Settings(jobs=args.jobs, warmup=args.warmup, submitters=args.submitters, batch_size=args.batch_size,
                            idle_jobs=args.idle_jobs, idle_pause_s=args.idle_pause_s, quiet_wait_s=args.quiet_wait_s)
        self.run_id = secrets.token_hex(3)
        self.n = 0
        self.tmp = Path(tempfile.mkdtemp(prefix="fq-dispatch-"))
        self.results: list[Result] = []
        self.availability: dict[str, str | None] = {}
        self.breakdowns: dict[str, dict[str, Any]] = {}
        self.elapsed_s = 0.0
        self.started = time.monotonic()

    def token(self) -> str:
        """A fresh queue/schema/namespace name; all the same length, so none contains another."""
        self.n += 1
        return f"fqb{self.run_id}n{self.n:02d}"

    def wanted(self, system: str, label: str) -> bool:
        """--only names a system, a label (framequeue's pair, a peer's broker[+variant]), system:label,
        a broker, or `results` / `bare` (the peers' configurations)."""
        only = self.args.only
        broker, _, variant = label.partition("+")
        kind = ("results" if variant.endswith("-results") else "bare") if system != "framequeue" else ""
        return (not only or f"{system}:{label}" in only or system in only or label in only
                or (system != "framequeue" and broker in only) or kind in only)

    # -- availability ----------------------------------------------------------------------------------

    def fq_pair_available(self, label: str, store: str, broker: str) -> str | None:
        """Asked again right before each pair runs: colleagues' backends may have landed meanwhile."""
        probe = self.token()
        db = str(self.tmp / f"probe-{probe}.db")
        try:
            why = None
            if store != "sqlite":
                why = fq_available("store", fq_store_url(store, probe, db))
            if why is None:
                why = fq_available("broker", fq_broker_url(broker, probe, db))
        finally:
            cleanup_token(probe, _servers(store, broker))
        self.availability[f"framequeue:{label}"] = why
        return why

    # -- running ---------------------------------------------------------------------------------------

    def run_one(self, make: Callable[[str], System], servers: set[str]) -> Result:
        """Measure a fresh instance; on a shared machine, once more if other work kept more than
        --rerun-above cores busy during its burst and the time budget allows: the run with less
        background load is kept, and says so."""
        result: Result | None = None
        for attempt in (1, 2):
            token = self.token()
            try:
                new = measure(make(token), self.cfg, sorted(servers))
            finally:
                cleanup_token(token, servers)
            new.attempt = attempt
            if result is None or (not new.error and new.background_cores < result.background_cores):
                if result is not None:
                    new.note = (f"measured twice: the first burst ran with {result.background_cores:.2f} cores "
                                "of background load")
                result = new
            elif result is not None:
                result.note = (f"measured twice: kept the first; the second ran with {new.background_cores:.2f} "
                               "cores of background load")
            left = self.args.budget_s - (time.monotonic() - self.started)
            if (result.error or result.background_cores <= self.args.rerun_above or attempt == 2
                    or left < RERUN_RESERVE_S):
                break
            log(f"{result.system} on {result.broker}: {result.background_cores:.2f} cores of background load; "
                "measuring again")
        assert result is not None
        self.results.append(result)
        return result

    def framequeue(self, label: str, store: str, broker: str) -> None:
        if not self.wanted("framequeue", label):
            return
        why = self.fq_pair_available(label, store, broker)
        if why is not None:
            log(f"framequeue on {label}: not available: {why}")
            return
        self.run_one(lambda token: FrameQueue(label, store, broker, token, make_root(self.tmp, label)),
                     _servers(store, broker))

    def peer(self, name: str, broker: str, results: str = "") -> None:
        from bench.dispatch.peers import VARIANTS, CeleryPeer, DramatiqPeer

        label = f"{broker}+{VARIANTS[results]}" if results else broker
        if not self.wanted(name, label):
            return
        why = _peer_available(broker, results)
        self.availability[f"{name}:{label}"] = why
        if why is not None:
            log(f"{name} on {label}: not available: {why}")
            return

        def make(token: str) -> System:
            root = Path(tempfile.mkdtemp(prefix=f"{name}-{label}-", dir=self.tmp))
            cls = CeleryPeer if name == "celery" else DramatiqPeer
            return cls(broker, token, root, results)

        self.run_one(make, {broker, results} - {""})

    def probe_pass(self, label: str, store: str, broker: str) -> None:
        if self.availability.get(f"framequeue:{label}", "not run") is not None:
            return
        token = self.token()
        root = make_root(self.tmp, f"probe-{label}")
        probe_dir = root / "probe"
        probe_dir.mkdir()
        system = FrameQueue(label, store, broker, token, root, probe_dir=probe_dir)
        cfg = Settings(jobs=self.cfg.jobs, warmup=self.cfg.warmup, submitters=self.cfg.submitters, batch_size=0,
                       idle_jobs=0, quiet_wait_s=self.cfg.quiet_wait_s)
        servers = _servers(store, broker)
        try:
            result = measure(system, cfg, sorted(servers))
        finally:
            cleanup_token(token, servers)
        found = breakdown.analyze(probe_dir)
        found["probed_jobs_per_s"] = result.burst.jobs_per_s if result.burst else math.nan
        found["probed_cpu_ms_per_job"] = result.cpu_ms_per_job
        found["probed_background_cores"] = result.background_cores
        found["error"] = found.get("error", "") or result.error
        self.breakdowns[label] = found

    def all(self) -> None:
        self.started = started = time.monotonic()
        pairs = {label: (store, broker) for label, store, broker in FQ_PAIRS}
        # grouped by broker, framequeue first on each; never two systems at once
        for label, store, broker in FQ_PAIRS:
            self.framequeue(label, store, broker)
            for name, results in PEER_CONFIGS.get(broker, []):
                self.peer(name, broker, results)
        for label in self.args.breakdown:
            if label in pairs and self.wanted("framequeue", label):
                log(f"breakdown pass: framequeue on {label}")
                self.probe_pass(label, *pairs[label])
        self.elapsed_s = time.monotonic() - started

    def close(self) -> None:
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log(f"kept {self.tmp}")


# -- report -------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str] = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "os": platform.platform(),
            "packages": versions, "servers": server_versions()}


def _f(x: float | None, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.{digits}f}"


#: a peer's variant -> how the tables name it
VARIANT_NAMES = {"redis-results": "results in Redis", "pg-results": "results in PostgreSQL"}
#: submit mode -> the Result field holding its burst
MODES = {"single": "burst", "batch": "batch"}


def _name(r: Result) -> str:
    if r.system == "framequeue":
        return f"framequeue ({r.store} store)"
    if not r.variant:
        return f"{r.system}, bare"
    started = ", STARTED tracked" if r.system == "celery" else ""
    return f"{r.system}, {VARIANT_NAMES.get(r.variant, r.variant)}{started}"


def _phase(r: Result, mode: str) -> Phase | None:
    phase: Phase | None = getattr(r, MODES[mode])
    return phase if phase is not None and phase.completed else None


def _rate(r: Result, mode: str) -> float:
    phase = _phase(r, mode)
    return phase.jobs_per_s if phase is not None else math.nan


def faster_peer(results: list[Result], broker: str, mode: str, *, storing: bool) -> Result | None:
    """The peer with the most jobs/s in this submit mode on this broker, among those storing results or the
    bare ones."""
    peers = [r for r in results if r.system != "framequeue" and r.broker == broker and bool(r.variant) == storing
             and _phase(r, mode) is not None]
    return max(peers, key=lambda r: _rate(r, mode), default=None)


def ratios(results: list[Result], r: Result, mode: str) -> tuple[float, float]:
    """framequeue's jobs/s over the faster result-storing peer's, and over half the faster bare peer's, on its
    broker in the same submit mode (nan where there is none)."""
    if r.system != "framequeue":
        return math.nan, math.nan
    ours = _rate(r, mode)
    storing = faster_peer(results, r.broker, mode, storing=True)
    bare = faster_peer(results, r.broker, mode, storing=False)
    return (ours / _rate(storing, mode) if storing else math.nan,
            ours / (0.5 * _rate(bare, mode)) if bare else math.nan)


def _idle(r: Result) -> str:
    p = r.paced
    if p is None or not p.completed:
        return "–"
    return f"{_f(p.send_to_start_ms['p50'], 1)} / {_f(p.send_to_start_ms['p99'], 1)}"


def _x(ratio: float) -> str:
    """Truncated, not rounded: 0.997 shows as 0.99×, never as a goal-meeting 1.00×."""
    return "–" if math.isnan(ratio) else f"{math.floor(ratio * 100) / 100:.2f}×"


def table(results: list[Result]) -> list[str]:
    rows = [
        "| system | broker | submit | jobs/s | submit→start p50 / p99 (burst), ms | submit call→start p50 / p99 "
        "(idle), ms | CPU per job, ms | background load, cores | × faster result-storing peer | × ½ faster bare peer |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        if r.error and r.burst is None:
            rows.append(f"| {_name(r)} | {r.broker} | | failed: {r.error[:80]} | | | | | | |")
            continue
        for mode in MODES:
            phase = _phase(r, mode)
            if phase is None:
                if mode == "single" or r.error:
                    rows.append(f"| {_name(r)} | {r.broker} | {mode} | failed: {r.error[:80]} | | | | | | |")
                continue
            vs_storing, vs_half_bare = ratios(results, r, mode)
            submit = mode if mode == "single" else f"batch of {math.ceil(phase.jobs / max(1, phase.calls))}"
            rows.append(
                f"| {_name(r)} | {r.broker} | {submit} | {_f(phase.jobs_per_s, 1)} | "
                f"{_f(phase.submit_to_start_ms['p50'])} / {_f(phase.submit_to_start_ms['p99'])} | "
                f"{_idle(r) if mode == 'single' else ''} | {_f(phase.cpu_ms_per_job, 1)} | "
                f"{_f(phase.background_cores, 2)} | {_x(vs_storing)} | {_x(vs_half_bare)} |"
            )
    return rows


CPU_PARTS = ("api", "workers", "fork server", "media children")


def _system_cpu_ms(cpu_s: dict[str, float], jobs: int) -> float:
    """CPU per job of the system and its broker/database server (the driver, i.e. the client, left out)."""
    return 1000.0 * sum(v for k, v in cpu_s.items() if k != "bench driver") / max(1, jobs)


def cpu_table(results: list[Result], cores: int) -> list[str]:
    rows = [
        "| system | broker | submit | API | workers | fork server | media children | broker/db server "
        f"| client (driver) | total | CPU ceiling on {cores} cores, jobs/s |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        for mode in MODES:
            phase = _phase(r, mode)
            if phase is None:
                continue
            n = phase.completed
            per = {k: 1000.0 * v / n for k, v in phase.cpu_s_by_component.items()}
            server = sum(v for k, v in per.items() if k.endswith(" server") and k != "fork server")
            cells = [_f(per.get(k), 1) if k in per else "–" for k in CPU_PARTS]
            system_ms = _system_cpu_ms(phase.cpu_s_by_component, n)
            ceiling = 1000.0 * cores / system_ms if system_ms > 0 else math.nan
            rows.append(f"| {_name(r)} | {r.broker} | {mode} | {' | '.join(cells)} | {_f(server, 1)} | "
                        f"{_f(per.get('bench driver'), 1)} | {_f(sum(per.values()), 1)} | {_f(ceiling)} |")
    return rows


def verdict(results: list[Result]) -> list[str]:
    """The issue's goal per shared broker and submit mode: framequeue at least as fast as the faster
    result-storing peer and at least half the faster bare peer's rate; idle submit→start p50 at or below
    the peers'."""
    out = []
    for broker in PEER_BROKERS:
        fq = next((r for r in results if r.system == "framequeue" and r.broker == broker and r.burst), None)
        if fq is None:
            continue
        for mode in MODES:
            storing = faster_peer(results, broker, mode, storing=True)
            bare = faster_peer(results, broker, mode, storing=False)
            ours = _rate(fq, mode)
            if math.isnan(ours) or (storing is None and bare is None):
                continue
            vs_storing, vs_half_bare = ratios(results, fq, mode)
            parts = [f"- {broker}, {mode} submit: {_name(fq)} {_f(ours, 1)} jobs/s"]
            if storing is not None:
                parts.append(f"vs {_name(storing)} {_f(_rate(storing, mode), 1)} = {_x(vs_storing)} → "
                             f"**{'met' if vs_storing >= 1.0 else 'not met'}**")
            if bare is not None:
                parts.append(f"vs half of {_name(bare)} {_f(_rate(bare, mode), 1)} = {_x(vs_half_bare)} → "
                             f"**{'met' if vs_half_bare >= 1.0 else 'not met'}**")
            out.append("; ".join(parts) + ".")
        peers = [r for r in results if r.system != "framequeue" and r.broker == broker and r.paced
                 and r.paced.completed]
        if fq.paced is not None and fq.paced.completed and peers:
            ours_ms = fq.paced.send_to_start_ms["p50"]
            parts = [f"- {broker}, idle submit call→start p50: framequeue {_f(ours_ms, 1)} ms"]
            for what, group in (("result-storing peer", [r for r in peers if r.variant]), ("peer", peers)):
                if not group:
                    continue
                best = min(group, key=lambda r: r.paced.send_to_start_ms["p50"] if r.paced else math.inf)
                assert best.paced is not None
                theirs_ms = best.paced.send_to_start_ms["p50"]
                parts.append(f"vs the quickest {what} ({_name(best)}) {_f(theirs_ms, 1)} ms → "
                             f"**{'met' if ours_ms <= theirs_ms else 'not met'}**")
            out.append("; ".join(parts) + ".")
    return out


def _fq_cpu_means(results: list[Result]) -> dict[str, float]:
    """framequeue's CPU ms per job by component, averaged over its backends."""
    fq = [r for r in results if r.system == "framequeue" and r.burst and r.burst.completed]
    out: dict[str, float] = {}
    for r in fq:
        assert r.burst is not None
        for k, v in r.cpu_s_by_component.items():
            key = "broker/db server" if k.endswith(" server") and k != "fork server" else k
            out[key] = out.get(key, 0.0) + 1000.0 * v / r.burst.completed / len(fq)
    return out


def _step(found: dict[str, dict[str, Any]], label: str, prefix: str) -> float:
    rows = [row for b in [found.get(label, {})] for row in b.get("worker", []) if row["step"].startswith(prefix)]
    return sum(row["ms_per_job"] for row in rows) if rows else math.nan


def dominates(results: list[Result]) -> list[str]:
    cpu = _fq_cpu_means(results)
    if not cpu:
        return []
    total = sum(v for k, v in cpu.items() if k != "bench driver")
    child = cpu.get("media children", 0.0) + cpu.get("fork server", 0.0)
    return [
        f"framequeue's CPU per job, averaged over its backends: {total:.1f} ms without the client: the API "
        f"{cpu.get('api', 0.0):.1f} ms, the worker processes {cpu.get('workers', 0.0):.1f} ms, their warm media "
        f"children {child:.1f} ms, the database/broker servers {cpu.get('broker/db server', 0.0):.1f} ms. On a "
        f"2-core machine that CPU alone caps framequeue near {2000.0 / total:.0f} jobs/s before any waiting; the "
        "peers spend a few ms per job in all.",
    ]


def ideas(results: list[Result], found: dict[str, dict[str, Any]]) -> list[str]:
    waiting = {label: _step(found, label, "receive") / b["worker_cycle_ms_per_job"]
               for label, b in found.items() if b.get("worker")}
    api = {label: next((row for row in b.get("api", []) if "store.create" in row["step"]), None)
           for label, b in found.items()}
    insert = "; ".join(f"{label}: row insert mean {_f(row['ms_per_job'], 1)} ms vs p50 {_f(row['p50_ms'], 1)} ms"
                       for label, row in api.items() if row)
    starved = ", ".join(f"{label} {100 * share:.0f}%" for label, share in waiting.items())
    return [
        "Ideas, largest first:",
        "",
        f"1. **The submit path is now the bottleneck.** In a burst the workers spend a large share of their cycle "
        f"waiting in receive for the next job ({starved}): the API cannot insert rows fast enough. Each submit "
        "commits the row, the publish (a second transaction on SQLite and PostgreSQL queues) and "
        "mark_published; on SQLite they queue for the one write lock behind the workers' commits "
        f"({insert}). A batch submit (one transaction for N rows and one publish call), writing the row and "
        "its queue entry in one transaction where the store and the queue share a database, and coalescing "
        "mark_published into one UPDATE every few milliseconds would each cut it.",
        "2. **Fewer commits per job in the worker.** claim, finish (which now carries the final progress) and "
        "ack are three transactions; on PostgreSQL with a PostgreSQL queue the ack and the finish could be one.",
        "3. **The per-job scratch folder and input copy** could be skipped for pipelines that stream their "
        "input; the result upload fsyncs a file and renames it (the local store's atomic write).",
        "",
        "Done since the first measurement (54–56 jobs/s on every backend): the media child is warm and serves "
        "up to `FQ_CHILD_MAX_JOBS` jobs (a fresh one after any job that did not end cleanly), one heartbeat "
        "thread pair per worker instead of per job, the final progress written in the finish transaction, no "
        "renew before the upload (the heartbeat already says whether the lease is lost), the first progress "
        "write after 0.5 s (short jobs never make one), and no listing of stale outputs on a job's first claim.",
    ]


def breakdown_tables(found: dict[str, dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for label, b in found.items():
        if b.get("error") and not b.get("worker"):
            out += [f"*{label}*: breakdown failed: {b['error']}", ""]
            continue
        cycle = b["worker_cycle_ms_per_job"]
        out += [
            f"**{label}** — {b['jobs']} burst jobs with timers on ({_f(b['probed_jobs_per_s'], 1)} jobs/s, "
            f"{_f(b['probed_cpu_ms_per_job'], 1)} ms CPU/job, background {_f(b['probed_background_cores'], 2)} "
            f"cores). One worker's cycle per job: {_f(cycle, 1)} ms (2 workers in parallel).",
            "",
            "| worker step | ms per job | share | p50 of one call, ms |",
            "|---|--:|--:|--:|",
        ]
        for row in b["worker"]:
            share = "" if row["step"].startswith("  ") else f"{100 * row['ms_per_job'] / cycle:.0f}%"
            out.append(f"| {row['step']} | {_f(row['ms_per_job'], 1)} | {share} | {_f(row['p50_ms'], 1)} |")
        out += ["", "| API step (per submit) | ms | p50 of one call, ms |", "|---|--:|--:|"]
        for row in b["api"]:
            out.append(f"| {row['step']} | {_f(row['ms_per_job'], 1)} | {_f(row['p50_ms'], 1)} |")
        out.append("")
    return out


def caveats(results: list[Result]) -> list[str]:
    loaded = [r for r in results if r.burst is not None and r.background_cores > 0.3]
    out = []
    if loaded:
        worst = max(r.background_cores for r in loaded)
        out.append(f"- This machine is shared: other sessions kept up to {worst:.1f} of its 2 cores busy during "
                   f"{len(loaded)} of the {len(results)} bursts (background column). framequeue, which needs the "
                   "CPU most, is slowed most by that; the CPU columns are the fairer comparison where it differs.")
    for r in results:
        if r.note:
            out.append(f"- {_name(r)} on {r.broker}: {r.note}.")
        if r.failures:
            what = "jobs failed" if r.system == "framequeue" else "tasks ran without a stored result"
            out.append(f"- {_name(r)} on {r.broker}: **{r.failures} {what}**.")
        if r.burst is not None and r.burst.wall_s <= 1.25 * r.burst.submit_s:
            out.append(f"- {_name(r)} on {r.broker} finished its burst {r.burst.wall_s - r.burst.submit_s:.2f} s "
                       f"after the client's last send returned ({r.burst.submit_s:.2f} s for {r.burst.jobs} sends "
                       "from the client threads): its jobs/s is bounded by the client, a floor.")
    out += [
        "- Dramatiq's Redis consumer polls with a back-off of up to 1 s while its queue is empty, hence its idle "
        "latency there and the slow start of its burst; Celery's Redis transport blocks in BRPOP, and RabbitMQ "
        "pushes to its consumers.",
        "- framequeue's RabbitMQ broker declares quorum queues (replicated log, fsync'd); Celery and Dramatiq "
        "declare classic durable queues with persistent messages. framequeue's NATS broker is a JetStream "
        "work queue with file storage; the peers have no NATS transport.",
        "- Prefetch: Celery (multiplier 1, acks late) holds at most one unacked message per pool process, the "
        "one it runs; Dramatiq holds up to two per thread; a framequeue worker receives its next message only "
        "after it acked the current one.",
    ]
    return out


def markdown(run: Run, info: dict[str, Any]) -> str:
    cfg = run.cfg
    avail = [f"`{k}`" + ("" if v is None else f" (not available: {v})") for k, v in run.availability.items()]
    pk = info["packages"]
    srv = ", ".join(f"{k} {v}" for k, v in info["servers"].items())
    lines = [
        "## Dispatch overhead: no-op jobs, framequeue vs Celery and Dramatiq",
        "",
        f"`python -m bench.dispatch.run --jobs {cfg.jobs} --batch-size {cfg.batch_size}` on {info['cores']} cores "
        f"({info['cpu']}), Python {info['python']}; framequeue {pk.get('framequeue', '?')}, Celery "
        f"{pk.get('celery', '?')} (kombu {pk.get('kombu', '?')}, SQLAlchemy {pk.get('sqlalchemy', '–')}), Dramatiq "
        f"{pk.get('dramatiq', '?')}; servers on 127.0.0.1: {srv}. "
        f"One run, one system at a time, {time.strftime('%Y-%m-%d')}; the run took {run.elapsed_s / 60:.1f} min.",
        "",
        "Each system gets 2 worker processes that run one job at a time. framequeue: `framequeue api` + 2 "
        "`framequeue worker`, jobs `{\"pipeline\": \"noop\"}` submitted over HTTP. Celery: `--pool prefork "
        "--concurrency 2`, `task_acks_late`, `task_reject_on_worker_lost`, `worker_prefetch_multiplier=1`. "
        "Dramatiq: `--processes 2 --threads 1`, its defaults (acks after the actor ran). On RabbitMQ the peers "
        "publish with confirms, as framequeue does. The peers' task appends its start time to a local file.",
        "",
        "Each peer runs twice: **bare** (no result stored, as users often run them) and **storing results** as "
        "framequeue keeps a job's record: Celery with a result backend and `task_track_started=True` (a STARTED "
        "state written when a pool process takes the task, like framequeue's running row, then SUCCESS), in Redis "
        "on the Redis broker and in PostgreSQL (Celery's SQLAlchemy backend on psycopg 3, framequeue's store) on "
        "RabbitMQ; Dramatiq with its `Results` middleware on Redis (its only durable result backend besides "
        "Memcached, on either broker) and `store_results=True`, which stores the result once the actor ran "
        "(Dramatiq has no started state).",
        "",
        f"- **burst**: {cfg.jobs} jobs sent at once by {cfg.submitters} client threads after {cfg.warmup} warm-up "
        "jobs; jobs/s = jobs / (first send → last job finished, by the job's own end time). Its submit→start is "
        "mostly waiting in the queue behind 2 busy workers, so it follows throughput.",
        f"- **batch** (rows `batch of {cfg.batch_size}`): the same {cfg.jobs} jobs in calls of {cfg.batch_size} "
        "through each system's own batching API, the calls spread over the client threads: framequeue's "
        "`Client.submit_many` (`POST /v1/jobs:batch`: the rows in one transaction, one publish call per broker), "
        "Celery's `group(...).apply_async()` (one producer, one publish per task), Dramatiq's "
        "`group(...).run()` (one enqueue per message); jobs/s to the last job's end, as above.",
        f"- **idle**: {cfg.idle_jobs} jobs one at a time, each sent {cfg.idle_pause_s:g} s after the previous one "
        "finished: the client's submit call → the job's start on an idle system, the dispatch latency proper "
        "(framequeue: the record's `started_at`, claimed by a worker before its media child starts; the peers: "
        "the task function's first line).",
        "- submit→start in a burst: framequeue from the job record's `created_at` (row inserted, before the HTTP "
        "reply) to `started_at`; the peers from the client's send call. Client send → start for framequeue, and "
        "its idle `created_at` → `started_at`, are in dispatch.json.",
        "- Ratios (framequeue rows on a broker the peers share): framequeue's jobs/s over the faster "
        "result-storing peer's on that broker, and over half the faster bare peer's, in the same submit mode "
        "(single vs single, batch vs batch): the issue's goal is at least 1.00× in both.",
        "- CPU per job: CPU seconds of the system's processes (framequeue: API + workers with their media "
        "children; peers: the worker tree), the broker/database server, and the driver, over the burst, "
        "divided by the jobs. Background load: the rest of the machine's busy time over the burst "
        "(other sessions on this shared machine); high values inflate every number in that row. A system "
        f"whose burst ran with more than {run.args.rerun_above:g} background cores is measured once more while "
        "the run's time budget allows, and the quieter measurement is kept.",
        "",
        *table(run.results),
        "",
        "CPU per job by component, ms (over each burst):",
        "",
        *cpu_table(run.results, info["cores"] or 1),
        "",
        "The CPU ceiling is cores / (CPU per job of the system and its server): the rate this machine could "
        "reach with every core on it; it moves less with the background load than jobs/s does.",
        "",
        "Available backends: " + ", ".join(avail) + ".",
        "",
        *caveats(run.results),
        "",
        "Goal (framequeue at least as fast as the faster result-storing peer on each shared broker, at least "
        "half the faster bare peer's rate, and an idle submit→start p50 at or below the quickest peer's):",
        "",
        *(verdict(run.results) or ["- no broker had both framequeue and a peer result"]),
        "",
        "What framequeue does per job that the peers do not: an HTTP request, a durable job row "
        "(insert, claim with a lease and fencing token, progress, finish: each a committed transaction; "
        "SQLite with synchronous=FULL), a media child process forked from the fork server, and an output "
        "file written with fsync and recorded. The peers run a function in an already-running pool process; "
        "bare they store nothing, storing results they write one or two keys/rows per task. The numbers above "
        "are as measured, with all of that included.",
        "",
        "### Where framequeue's time per job goes",
        "",
        "A second pass with framequeue's API and workers timed from inside (bench/dispatch/probe.py; "
        "the media child reports when it entered and left). Means per job over the burst; the worker rows "
        "add up to one worker's receive→ack cycle.",
        "",
        *breakdown_tables(run.breakdowns),
        "### What dominates, and how to reduce it",
        "",
        *dominates(run.results),
        "",
        *ideas(run.results, run.breakdowns),
    ]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--jobs", type=int, default=200, help="jobs in the burst, per system")
    ap.add_argument("--warmup", type=int, default=16)
    ap.add_argument("--submitters", type=int, default=4, help="client threads sending the burst")
    ap.add_argument("--batch-size", type=int, default=100,
                    help="jobs per call in the batch burst (framequeue takes up to 1,000); 0: no batch burst")
    ap.add_argument("--idle-jobs", type=int, default=40, help="jobs in the idle series, one at a time")
    ap.add_argument("--idle-pause-s", type=float, default=0.25,
                    help="in the idle series, the pause between a job's end and the next submit")
    ap.add_argument("--quiet-wait-s", type=float, default=20.0,
                    help="before each burst, wait up to this long for the machine to be idle")
    ap.add_argument("--only", type=lambda s: [x for x in s.split(",") if x], default=[],
                    help="comma list of systems, brokers, system:label (framequeue:sqlite, celery:redis, "
                         "dramatiq:redis+redis-results, celery:rabbitmq+pg-results), or bare / results (peers)")
    ap.add_argument("--breakdown", type=lambda s: [x for x in s.split(",") if x and x != "none"],
                    default=["sqlite", "postgres"], help="framequeue pairs to time from inside, or 'none'")
    ap.add_argument("--rerun-above", type=float, default=0.5,
                    help="measure a system again (once) if other work kept more cores than this busy in its burst")
    ap.add_argument("--budget-s", type=float, default=900.0, help="no re-runs past this much run time")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for dispatch.json and dispatch.md")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (logs, probe files)")
    args = ap.parse_args(argv)

    run = Run(args)
    try:
        run.all()
    finally:
        run.close()
    info = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    body = {
        "machine": info,
        "settings": asdict(run.cfg),
        "elapsed_s": run.elapsed_s,
        "available": run.availability,
        "results": [r.to_dict() for r in run.results],
        "breakdown": run.breakdowns,
    }
    (args.out / "dispatch.json").write_text(json.dumps(rounded(body), indent=1) + "\n")
    md = markdown(run, info)
    (args.out / "dispatch.md").write_text(md)
    print("\n".join(table(run.results)))
    print()
    print("\n".join(verdict(run.results)))
    print("\n".join(dominates(run.results)))
    log(f"wrote {args.out / 'dispatch.json'} and {args.out / 'dispatch.md'} ({run.elapsed_s / 60:.1f} min)")
    return 0 if all(not r.error for r in run.results) else 1


if __name__ == "__main__":
    sys.exit(main())
