"""The local supervisor of `framequeue autoscale`: runs the policy against the real queue statistics and starts
or stops `framequeue worker` processes on this machine.

Every `interval_s` one tick:

1. **reap**: worker processes that exited are forgotten; one that exited without being asked to (crashed) is
   logged, and the next reconcile starts another in its place;
2. **escalate**: a worker still alive `kill_after_s` after its SIGTERM (the worker's drain_s + a grace) is
   SIGKILLed, process group and all, and logged as an error: a worker is never killed otherwise;
3. **observe**: waiting = ready + delayed messages of the broker; in-flight = the larger of the broker's
   unacked messages and the job store's running jobs (RabbitMQ's in_flight counts only the unacked
   messages of one connection, so the job store is the better count of busy workers); the running jobs'
   lease owners (`host:pid`) also say which of this host's workers are busy;
4. **decide**: `decide(config, observation, state)` with `current_workers` = the worker count the supervisor
   holds (as a Kubernetes Deployment's replicas: a crashed worker is replaced without a policy decision,
   cooldown or not), the clock injected (time.time in production);
5. **apply**: start workers (each its own process group, so a terminal's Ctrl-C or a signal to the
   supervisor's group never reaches them), or scale in by SIGTERM to the most recently started idle workers,
   then the most recently started busy ones; a worker drains (finishes its job, or hands it back after its
   drain_s) and exits by itself. A worker that got SIGTERM is *leaving*: it is not capacity and is never
   counted as current;
6. **record**: one log line and one JSON line (`decisions` file) per decision.

`Autoscaler.shutdown()` (SIGTERM / SIGINT of the command) stops deciding, sends SIGTERM to every worker and
waits for them to drain.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Protocol

from framequeue.brokers.base import Broker
from framequeue.jobs import JobStatus
from framequeue.jobstore import JobStore
from framequeue.scaling.policy import HourFloor, Observation, PolicyConfig, PolicyState, decide

__all__ = [
    "Autoscaler",
    "LocalTime",
    "QueueLoad",
    "QueueObserver",
    "WorkerProcess",
    "parse_floor",
    "plot_decisions",
    "read_decisions",
    "worker_launcher",
]

log = logging.getLogger("framequeue.autoscale")

#: the job store's running jobs are counted up to this many (more changes no decision: max_workers caps it)
RUNNING_COUNT_CAP = 1000


class WorkerProcess(Protocol):
    """What the supervisor needs of a worker process (subprocess.Popen behind it; a fake in the unit tests)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None:
        """The exit status once the process ended, else None (reaps it)."""
        ...

    def terminate(self) -> None:
        """SIGTERM to the worker alone: it drains and exits by itself."""
        ...

    def kill(self) -> None:
        """SIGKILL to the worker's whole process group (its media child included)."""
        ...


Launcher = Callable[[], WorkerProcess]


@dataclass(frozen=True)
class QueueLoad:
    """What one look at the queue says."""

    #: ready + delayed messages
    waiting: int
    #: jobs being worked on
    in_flight: int
    #: pids on this host whose worker holds a running job's lease (None: unknown); scale-in spares them
    busy_pids: frozenset[int] | None = None


StatsSource = Callable[[], QueueLoad]


class _Popened:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc

    @property
    def pid(self) -> int:
        return self._proc.pid

    def poll(self) -> int | None:
        return self._proc.poll()

    def terminate(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()

    def kill(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)


def worker_launcher(env: Mapping[str, str], log_level: str = "info", extra_args: Sequence[str] = ()) -> Launcher:
    """Starts `python -m framequeue worker` in its own session (process group) with this environment; its
    output goes where the supervisor's goes."""

    def launch() -> WorkerProcess:
        cmd = [sys.executable, "-m", "framequeue", "--log-level", log_level, "worker", *extra_args]
        return _Popened(subprocess.Popen(cmd, env=dict(env), start_new_session=True))

    return launch


class QueueObserver:
    """The queue's load from the broker's statistics and, when given, the job store's running jobs: they count
    the in-flight jobs of every instance (RabbitMQ's in_flight counts one connection's), and their lease owners
    (`host:pid`) say which of this host's workers are busy."""

    def __init__(self, broker: Broker, store: JobStore | None = None, host: str | None = None) -> None:
        self.broker, self.store = broker, store
        self.host = host or socket.gethostname()

    def __call__(self) -> QueueLoad:
        stats = self.broker.stats()
        waiting, in_flight = stats.ready + stats.delayed, stats.in_flight
        if self.store is None:
            return QueueLoad(waiting, in_flight)
        running = self.store.list_jobs(JobStatus.RUNNING, limit=RUNNING_COUNT_CAP)
        busy: set[int] = set()
        for job in running:
            host, _, pid = (job.lease_owner or "").rpartition(":")
            if host == self.host and pid.isdigit():
                busy.add(int(pid))
        return QueueLoad(waiting, max(in_flight, len(running)), frozenset(busy))


@dataclass
class _Worker:
    proc: WorkerProcess
    started_s: float
    #: start order (workers started in one tick share started_s)
    seq: int
    #: when it got SIGTERM (None: it is capacity)
    stopping_since_s: float | None = None
    killed: bool = False


@dataclass
class Tick:
    """One decision, as logged and written to the decisions file."""

    t: float
    waiting: int
    in_flight: int
    #: workers the supervisor held before the decision (the policy's current_workers)
    current: int
    desired: int
    endpoints: int
    reason: str
    #: workers that are capacity after the decision was applied (alive, not draining)
    live: int = 0
    #: workers that got SIGTERM and have not exited yet
    draining: int = 0
    started: list[int] = field(default_factory=list)
    stopping: list[int] = field(default_factory=list)
    exited: list[int] = field(default_factory=list)
    crashed: list[int] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {"t": round(self.t, 3), "time": datetime.fromtimestamp(self.t, UTC).isoformat(timespec="seconds"),
                "waiting": self.waiting, "in_flight": self.in_flight, "current": self.current,
                "desired": self.desired, "endpoints": self.endpoints, "reason": self.reason, "live": self.live,
                "draining": self.draining, "started": self.started, "stopping": self.stopping,
                "exited": self.exited, "crashed": self.crashed, "killed": self.killed}

    def line(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in (("started", self.started), ("stopping", self.stopping),
                                                  ("crashed", self.crashed), ("killed", self.killed)) if v)
        return (f"decision waiting={self.waiting} in_flight={self.in_flight} current={self.current} "
                f"desired={self.desired} endpoints={self.endpoints} draining={self.draining}{extra} "
                f"reason={self.reason}")


class Autoscaler:
    def __init__(self, config: PolicyConfig, stats: StatsSource, launch: Launcher, *,
                 clock: Callable[[], float] = time.time, decisions_path: Path | None = None,
                 kill_after_s: float = 35.0) -> None:
        self.config, self._stats, self._launch, self._clock = config, stats, launch, clock
        self.decisions_path = decisions_path
        #: a worker alive this long after its SIGTERM is SIGKILLed (its drain_s + a grace)
        self.kill_after_s = kill_after_s
        self.state = PolicyState()
        #: the worker count the supervisor holds (the last decision)
        self.target = 0
        self.workers: list[_Worker] = []
        self._started = 0
        if decisions_path is not None:
            decisions_path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def active(self) -> list[_Worker]:
        """Workers that are capacity: alive as far as the last reap knows, not asked to stop."""
        return [w for w in self.workers if w.stopping_since_s is None]

    @property
    def leaving(self) -> list[_Worker]:
        return [w for w in self.workers if w.stopping_since_s is not None]

    def tick(self) -> Tick | None:
        """Reap, escalate, observe, decide, apply, record. None when the queue could not be read (the
        workers are left as they are and the next tick tries again)."""
        now = self._clock()
        exited, crashed = self._reap()
        killed = self._escalate(now)
        try:
            load = self._stats()
        except Exception as exc:  # a broker outage must not stop the supervisor
            log.warning("queue statistics unavailable (%s: %s); keeping %d worker(s)", type(exc).__name__, exc,
                        len(self.active))
            return None
        current = self.target
        obs = Observation(now, load.waiting, load.in_flight, current)
        decision, self.state = decide(self.config, obs, self.state)
        self.target = decision.workers
        started, stopping = self._reconcile(now, load.busy_pids)
        tick = Tick(now, load.waiting, load.in_flight, current, decision.workers, decision.endpoints, decision.reason,
                    live=len(self.active), draining=len(self.leaving), started=started, stopping=stopping,
                    exited=exited, crashed=crashed, killed=killed)
        self._record(tick)
        return tick

    def _reap(self) -> tuple[list[int], list[int]]:
        exited: list[int] = []
        crashed: list[int] = []
        for w in list(self.workers):
            rc = w.proc.poll()
            if rc is None:
                continue
            self.workers.remove(w)
            if w.stopping_since_s is not None:
                exited.append(w.proc.pid)
                log.info("worker pid %d drained and exited (status %s)", w.proc.pid, rc)
            else:
                crashed.append(w.proc.pid)
                log.warning("worker pid %d exited unasked (status %s); starting another in its place", w.proc.pid, rc)
        return exited, crashed

    def _escalate(self, now: float) -> list[int]:
        killed: list[int] = []
        for w in self.leaving:
            assert w.stopping_since_s is not None
            if not w.killed and now - w.stopping_since_s >= self.kill_after_s:
                log.error("WORKER PID %d STILL ALIVE %.0f s AFTER SIGTERM (drain + grace %.0f s): SIGKILL to its "
                          "process group; its job comes back when its lease expires", w.proc.pid,
                          now - w.stopping_since_s, self.kill_after_s)
                w.proc.kill()
                w.killed = True
                killed.append(w.proc.pid)
        return killed

    def _reconcile(self, now: float, busy_pids: frozenset[int] | None = None) -> tuple[list[int], list[int]]:
        """Start or stop workers until the active ones number `target`. Scale-in stops the newest idle workers
        first, then the newest busy ones (a busy worker finishes its job, or hands it back after its drain_s:
        sparing it saves a long job); with nothing known of who is busy, the newest."""
        started: list[int] = []
        stopping: list[int] = []
        active = self.active
        for _ in range(self.target - len(active)):
            proc = self._launch()
            self._started += 1
            self.workers.append(_Worker(proc, now, self._started))
            started.append(proc.pid)
        if len(active) > self.target:
            busy = busy_pids or frozenset()
            newest_first = sorted(active, key=lambda w: (w.proc.pid not in busy, w.seq), reverse=True)
            for w in newest_first[: len(active) - self.target]:
                w.proc.terminate()
                w.stopping_since_s = now
                stopping.append(w.proc.pid)
        if started:
            log.info("started worker(s) %s", started)
        if stopping:
            log.info("SIGTERM to worker(s) %s: they drain and exit", stopping)
        return started, stopping

    def _record(self, tick: Tick) -> None:
        log.info("%s", tick.line())
        if self.decisions_path is not None:
            with self.decisions_path.open("a") as fh:
                fh.write(json.dumps(tick.record(), separators=(",", ":")) + "\n")

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """Tick every interval_s until `stop` is set (an error in one tick is logged, not fatal)."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("autoscale tick failed")
            stop.wait(interval_s)

    def shutdown(self, poll_s: float = 0.2, sleep: Callable[[float], None] = time.sleep) -> None:
        """SIGTERM every worker, wait until all have drained (SIGKILL past kill_after_s), record the end."""
        now = self._clock()
        self.target = 0
        _, stopping = self._reconcile(now)
        exited, crashed = self._reap()
        killed: list[int] = []
        while self.workers:
            sleep(poll_s)
            killed += self._escalate(self._clock())
            e, c = self._reap()
            exited += e
            crashed += c
        tick = Tick(now, 0, 0, len(stopping), 0, 0, f"shutdown: {len(stopping)} worker(s) drained", live=0,
                    draining=0, stopping=stopping, exited=exited, crashed=crashed, killed=killed)
        tick.t = self._clock()
        self._record(tick)


# -- options -------------------------------------------------------------------------------------------


def parse_floor(text: str) -> HourFloor:
    """`START-END:WORKERS` in hours, local time: `08-17:4` holds 4 workers from 08:00 to 17:00."""
    try:
        hours, _, workers = text.partition(":")
        start, _, end = hours.partition("-")
        return HourFloor(int(start), int(end), int(workers))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not START-END:WORKERS (e.g. 08-17:4): {exc}") from exc


class LocalTime(tzinfo):
    """This machine's local time zone, daylight saving included (as the C library's localtime knows it)."""

    def fromutc(self, dt: datetime) -> datetime:
        lt = time.localtime(dt.replace(tzinfo=UTC).timestamp())
        return datetime(*lt[:6], microsecond=dt.microsecond, tzinfo=self)

    def _local(self, dt: datetime | None) -> time.struct_time:
        if dt is None:
            return time.localtime()
        return time.localtime(time.mktime((*dt.timetuple()[:8], -1)))

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(seconds=self._local(dt).tm_gmtoff)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=1) if self._local(dt).tm_isdst > 0 else timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return self._local(dt).tm_zone

    def __repr__(self) -> str:
        return "LocalTime()"


# -- the decisions file and its picture ----------------------------------------------------------------


def read_decisions(path: Path) -> Iterator[dict[str, Any]]:
    with path.open() as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a line cut off by a crash


def plot_decisions(decisions: Path, out: Path) -> None:
    """Backlog (waiting, in-flight) and workers (desired, draining) over time, from a decisions file."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise RuntimeError("the plot needs matplotlib: pip install 'framequeue[sim]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(read_decisions(decisions))
    t0 = rows[0]["t"] if rows else 0.0
    t = [r["t"] - t0 for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True, dpi=80)
    top.plot(t, [r["waiting"] + r["in_flight"] for r in rows], drawstyle="steps-post", label="outstanding")
    top.plot(t, [r["waiting"] for r in rows], drawstyle="steps-post", label="waiting")
    top.plot(t, [r["in_flight"] for r in rows], drawstyle="steps-post", label="in flight")
    top.set_ylabel("jobs")
    top.legend(loc="upper right")
    top.set_title(f"framequeue autoscale: {len(rows)} decisions")
    bottom.plot(t, [r["desired"] for r in rows], drawstyle="steps-post", label="workers (desired)")
    bottom.plot(t, [r.get("draining", 0) for r in rows], drawstyle="steps-post", label="draining")
    bottom.plot(t, [r.get("endpoints", 0) for r in rows], drawstyle="steps-post", linestyle=":", label="endpoints")
    bottom.set_ylabel("workers")
    bottom.set_xlabel("seconds since the first decision")
    bottom.legend(loc="upper right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
