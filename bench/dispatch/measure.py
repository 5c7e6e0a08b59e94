"""One system, one run: start it, warm it up, a burst of N jobs submitted one per call (throughput,
submit->start under load), the same N submitted in batches through the system's own batching API, an idle
series one job at a time (submit->start on an idle system), CPU by component per burst, stop, clean up."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.dispatch.common import (
    CpuUse,
    Submitters,
    System,
    Timeline,
    cpu_between,
    cpu_snapshot,
    log,
    summary_ms,
    wait_quiet,
)

DONE_TIMEOUT_S = 300.0


@dataclass
class Settings:
    jobs: int = 200
    warmup: int = 16
    submitters: int = 4
    #: jobs per call in the batch burst (framequeue takes up to 1,000 per POST /v1/jobs:batch); 0: no batch burst
    batch_size: int = 100
    #: jobs in the idle series, each sent once the previous one finished and idle_pause_s passed
    idle_jobs: int = 40
    idle_pause_s: float = 0.25
    quiet_wait_s: float = 20.0


@dataclass
class Phase:
    jobs: int
    completed: int
    #: first client send -> last job finished (the job's own end time)
    wall_s: float
    jobs_per_s: float
    #: first send -> last send returned: how fast the client could hand jobs over
    submit_s: float
    #: how long one submit call took, as the client saw it
    submit_call_ms: dict[str, float]
    #: the system's own record of the job (framequeue: created_at) -> started
    submit_to_start_ms: dict[str, float]
    #: the client's send -> started (the same as above for the peers)
    send_to_start_ms: dict[str, float]
    #: started -> finished
    run_ms: dict[str, float]
    #: client calls in the phase (one per job, or one per batch)
    calls: int = 0
    #: CPU of the system, its servers and the driver over the phase, per job (bursts only)
    cpu_ms_per_job: float = math.nan
    cpu_s_by_component: dict[str, float] = field(default_factory=dict)
    #: cores busy with anything else on the machine during the phase
    background_cores: float = math.nan


@dataclass
class Result:
    system: str
    broker: str
    store: str
    token: str
    #: "" (framequeue; a bare peer) or the peer's result backend ("redis-results", "pg-results")
    variant: str = ""
    #: N jobs, one submit call each
    burst: Phase | None = None
    #: the same N jobs in calls of Settings.batch_size through the system's batching API
    batch: Phase | None = None
    #: one job at a time into an idle system
    paced: Phase | None = None
    #: the single-submit burst's (the batch burst's are on its Phase)
    cpu_s_by_component: dict[str, float] = field(default_factory=dict)
    cpu_ms_per_job: float = math.nan
    background_cores: float = math.nan
    idle_before_cores: float = math.nan
    failures: int = 0
    error: str = ""
    #: 2 when the harness measured the system again because of background load
    attempt: int = 1
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Call = tuple[str, float, float]
"""(handle, send time, return time) of one job, epoch seconds; a batch's jobs share its call's times."""


def _phase(n: int, calls: Sequence[Call], tl: dict[str, Timeline], call_s: Sequence[float] | None = None) -> Phase:
    """call_s: how long each client call took, where a call sent several jobs (else one per job)."""
    sends = [t for _, t, _ in calls]
    first, last_return = min(sends), max(r for _, _, r in calls)
    durations = list(call_s) if call_s is not None else [r - t for _, t, r in calls]
    done = list(tl.values())
    last_finish = max((t.finished for t in done), default=math.nan)
    wall = last_finish - first
    return Phase(
        jobs=n,
        completed=len(done),
        wall_s=wall,
        jobs_per_s=len(done) / wall if wall > 0 else math.nan,
        submit_s=last_return - first,
        submit_call_ms=summary_ms(durations),
        submit_to_start_ms=summary_ms([t.started - t.enqueued for t in done]),
        send_to_start_ms=summary_ms([t.started - t.sent for t in done]),
        run_ms=summary_ms([t.finished - t.started for t in done]),
        calls=len(durations),
    )


def _with_cpu(phase: Phase, use: CpuUse) -> Phase:
    phase.cpu_s_by_component = use.by_component
    phase.cpu_ms_per_job = 1000.0 * sum(use.by_component.values()) / max(1, phase.completed)
    phase.background_cores = use.background_cores
    return phase


def _batches(tags: Sequence[str], size: int) -> list[list[str]]:
    return [list(tags[i:i + size]) for i in range(0, len(tags), size)]


def measure(system: System, cfg: Settings, servers: Sequence[str]) -> Result:
    result = Result(system.system, system.broker, system.store, getattr(system, "token", ""),
                    variant=getattr(system, "variant", ""))
    subs = Submitters(cfg.submitters)
    name = f"{system.system}{'+' + result.variant if result.variant else ''} on {system.broker}"

    def timed_submit(tag: str) -> Call:
        t = time.time()
        handle = system.submit(tag)
        return handle, t, time.time()

    def timed_batch(tags: list[str]) -> list[Call]:
        t = time.time()
        handles = system.submit_many(tags)
        r = time.time()
        return [(h, t, r) for h in handles]

    def burst(send: Callable[[], list[list[Call]]]) -> tuple[list[list[Call]], dict[str, Timeline], CpuUse]:
        """send() -> the calls made, each as its jobs' Calls; timelines of all the jobs; CPU over the burst."""
        quiet = wait_quiet(cfg.quiet_wait_s)
        if math.isnan(result.idle_before_cores):
            result.idle_before_cores = quiet
        groups = system.groups()
        before = cpu_snapshot(groups, servers)
        calls = send()
        jobs = [c for call in calls for c in call]
        system.wait_done([h for h, _, _ in jobs], DONE_TIMEOUT_S)
        use = cpu_between(before, cpu_snapshot(groups, servers))
        return calls, system.timelines({h: t for h, t, _ in jobs}), use

    try:
        log(f"{name}: starting")
        system.start()
        # warm-up: every submitter thread and the paced (main) thread submit at least once, one job per call
        # and in a small batch
        warm = subs.run(system.thread_setup, timed_submit, [f"w{i}" for i in range(max(cfg.warmup, cfg.submitters))])
        warm.append(timed_submit("wmain"))
        if cfg.batch_size > 0:
            warm_batches = subs.run(system.thread_setup, timed_batch,
                                    [[f"wb{i}x{j}" for j in range(4)] for i in range(cfg.submitters)])
            warm += [c for b in warm_batches for c in b]
        system.wait_done([h for h, _, _ in warm], DONE_TIMEOUT_S)
        system.after_warmup()

        calls, tl, use = burst(lambda: [[c] for c in subs.run(system.thread_setup, timed_submit,
                                                                 [f"b{i}" for i in range(cfg.jobs)])])
        result.burst = _with_cpu(_phase(cfg.jobs, [c for [c] in calls], tl), use)
        result.cpu_s_by_component = use.by_component
        result.cpu_ms_per_job = result.burst.cpu_ms_per_job
        result.background_cores = use.background_cores
        log(f"{name}: burst {result.burst.jobs_per_s:.1f} jobs/s, "
            f"submit->start p50 {result.burst.submit_to_start_ms['p50']:.1f} ms")

        if cfg.batch_size > 0:
            batches = _batches([f"c{i}" for i in range(cfg.jobs)], cfg.batch_size)
            calls, tl, use = burst(lambda: subs.run(system.thread_setup, timed_batch, batches))
            result.batch = _with_cpu(_phase(cfg.jobs, [c for call in calls for c in call], tl,
                                            call_s=[call[0][2] - call[0][1] for call in calls if call]), use)
            log(f"{name}: batch burst ({cfg.batch_size} per call) {result.batch.jobs_per_s:.1f} jobs/s")

        if cfg.idle_jobs > 0:
            idle: list[Call] = []
            for i in range(cfg.idle_jobs):
                time.sleep(cfg.idle_pause_s)
                call = timed_submit(f"p{i}")
                system.wait_done([call[0]], DONE_TIMEOUT_S)
                idle.append(call)
            result.paced = _phase(cfg.idle_jobs, idle, system.timelines({h: t for h, t, _ in idle}))
            log(f"{name}: idle submit call->start p50 {result.paced.send_to_start_ms['p50']:.1f} ms")
        result.failures = system.failures()
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:2000]
        log(f"{name}: FAILED: {result.error}")
    finally:
        subs.close()
        system.stop()
        system.cleanup()
    return result
