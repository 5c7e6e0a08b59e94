"""Acting on this machine's worker processes: start them, SIGTERM the ones scaled in, SIGKILL one that
outlives its drain, forget the ones that exited. Decides nothing: the autoscaler's loop says how many."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Launcher", "LocalPool", "PoolWorker", "WorkerProcess", "worker_launcher"]

log = logging.getLogger("framequeue.autoscale")


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


@dataclass
class PoolWorker:
    proc: WorkerProcess
    started_s: float
    #: start order (workers started in one tick share started_s)
    seq: int
    #: when it got SIGTERM (None: it is capacity)
    stopping_since_s: float | None = None
    killed: bool = False


class LocalPool:
    """The worker processes this supervisor started, capacity or leaving."""

    def __init__(self, launch: Launcher, kill_after_s: float) -> None:
        self._launch = launch
        #: a worker alive this long after its SIGTERM is SIGKILLed (its drain_s + a grace)
        self.kill_after_s = kill_after_s
        self.workers: list[PoolWorker] = []
        self._started = 0

    @property
    def active(self) -> list[PoolWorker]:
        """Workers that are capacity: alive as far as the last reap knows, not asked to stop."""
        return [w for w in self.workers if w.stopping_since_s is None]

    @property
    def leaving(self) -> list[PoolWorker]:
        return [w for w in self.workers if w.stopping_since_s is not None]

    def reap(self) -> tuple[list[int], list[int]]:
        """Forget the workers that exited: (pids that drained as asked, pids that crashed)."""
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

    def escalate(self, now: float) -> list[int]:
        """SIGKILL the leaving workers past kill_after_s; their pids."""
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

    def reconcile(
        self, target: int, now: float, busy_pids: frozenset[int] | None = None
    ) -> tuple[list[int], list[int]]:
        """Start or stop workers until the active ones number `target`. Scale-in stops the newest idle workers
        first, then the newest busy ones (a busy worker finishes its job, or hands it back after its drain_s:
        sparing it saves a long job); with nothing known of who is busy, the newest."""
        started: list[int] = []
        stopping: list[int] = []
        active = self.active
        for _ in range(target - len(active)):
            proc = self._launch()
            self._started += 1
            self.workers.append(PoolWorker(proc, now, self._started))
            started.append(proc.pid)
        if len(active) > target:
            busy = busy_pids or frozenset()
            newest_first = sorted(active, key=lambda w: (w.proc.pid not in busy, w.seq), reverse=True)
            for w in newest_first[: len(active) - target]:
                w.proc.terminate()
                w.stopping_since_s = now
                stopping.append(w.proc.pid)
        if started:
            log.info("started worker(s) %s", started)
        if stopping:
            log.info("SIGTERM to worker(s) %s: they drain and exit", stopping)
        return started, stopping
