"""One system, one run: start it, warm it up, a burst of N jobs (throughput, submit->start under load),
a paced series (submit->start on an idle system), CPU by component, stop, clean up."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.dispatch.common import (
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
    paced_jobs: int = 40
    paced_rate: float = 4.0
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


@dataclass
class Result:
    system: str
    broker: str
    store: str
    token: str
    burst: Phase | None = None
    paced: Phase | None = None
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


def _phase(n: int, calls: Sequence[tuple[str, float, float]], tl: dict[str, Timeline]) -> Phase:
    sends = [t for _, t, _ in calls]
    first, last_return = min(sends), max(r for _, _, r in calls)
    done = list(tl.values())
    last_finish = max((t.finished for t in done), default=math.nan)
    wall = last_finish - first
    return Phase(
        jobs=n,
        completed=len(done),
        wall_s=wall,
        jobs_per_s=len(done) / wall if wall > 0 else math.nan,
        submit_s=last_return - first,
        submit_call_ms=summary_ms([r - t for _, t, r in calls]),
        submit_to_start_ms=summary_ms([t.started - t.enqueued for t in done]),
        send_to_start_ms=summary_ms([t.started - t.sent for t in done]),
        run_ms=summary_ms([t.finished - t.started for t in done]),
    )


def measure(system: System, cfg: Settings, servers: Sequence[str]) -> Result:
    result = Result(system.system, system.broker, system.store, getattr(system, "token", ""))
    subs = Submitters(cfg.submitters)

    def timed_submit(tag: str) -> tuple[str, float, float]:
        t = time.time()
        handle = system.submit(tag)
        return handle, t, time.time()

    try:
        log(f"{system.system} on {system.broker}: starting")
        system.start()
        # warm-up: every submitter thread and the paced (main) thread submit at least once
        warm = subs.run(system.thread_setup, timed_submit, [f"w{i}" for i in range(max(cfg.warmup, cfg.submitters))])
        warm.append(timed_submit("wmain"))
        system.wait_done([h for h, _, _ in warm], DONE_TIMEOUT_S)
        system.after_warmup()
        result.idle_before_cores = wait_quiet(cfg.quiet_wait_s)

        groups = system.groups()
        before = cpu_snapshot(groups, servers)
        calls = subs.run(system.thread_setup, timed_submit, [f"b{i}" for i in range(cfg.jobs)])
        system.wait_done([h for h, _, _ in calls], DONE_TIMEOUT_S)
        use = cpu_between(before, cpu_snapshot(groups, servers))
        tl = system.timelines({h: t for h, t, _ in calls})
        result.burst = _phase(cfg.jobs, calls, tl)
        result.cpu_s_by_component = use.by_component
        result.cpu_ms_per_job = 1000.0 * sum(use.by_component.values()) / max(1, len(tl))
        result.background_cores = use.background_cores
        log(f"{system.system} on {system.broker}: burst {result.burst.jobs_per_s:.1f} jobs/s, "
            f"submit->start p50 {result.burst.submit_to_start_ms['p50']:.1f} ms")

        if cfg.paced_jobs > 0:
            paced: list[tuple[str, float, float]] = []
            t0 = time.monotonic()
            for i in range(cfg.paced_jobs):
                pause = t0 + i / cfg.paced_rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                paced.append(timed_submit(f"p{i}"))
            system.wait_done([h for h, _, _ in paced], DONE_TIMEOUT_S)
            result.paced = _phase(cfg.paced_jobs, paced, system.timelines({h: t for h, t, _ in paced}))
            log(f"{system.system} on {system.broker}: paced submit->start p50 "
                f"{result.paced.submit_to_start_ms['p50']:.1f} ms")
        result.failures = system.failures()
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:2000]
        log(f"{system.system} on {system.broker}: FAILED: {result.error}")
    finally:
        subs.close()
        system.stop()
        system.cleanup()
    return result
