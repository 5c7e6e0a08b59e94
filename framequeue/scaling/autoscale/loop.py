"""The autoscaler's loop: each tick reaps and escalates (local), observes (observe), decides with the pure
policy, applies (local) and records (decisions). The order and its reasons are in the package docstring."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from framequeue.scaling.autoscale.decisions import Tick, write_decision
from framequeue.scaling.autoscale.local import Launcher, LocalPool, PoolWorker
from framequeue.scaling.autoscale.observe import StatsSource
from framequeue.scaling.policy import Observation, PolicyConfig, PolicyState, decide

__all__ = ["Autoscaler"]

log = logging.getLogger("framequeue.autoscale")


class Autoscaler:
    def __init__(self, config: PolicyConfig, stats: StatsSource, launch: Launcher, *,
                 clock: Callable[[], float] = time.time, decisions_path: Path | None = None,
                 kill_after_s: float = 35.0) -> None:
        self.config, self._stats, self._clock = config, stats, clock
        self.decisions_path = decisions_path
        self.pool = LocalPool(launch, kill_after_s)
        self.state = PolicyState()
        #: the worker count the supervisor holds (the last decision)
        self.target = 0
        if decisions_path is not None:
            decisions_path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def workers(self) -> list[PoolWorker]:
        return self.pool.workers

    @property
    def active(self) -> list[PoolWorker]:
        """Workers that are capacity: alive as far as the last reap knows, not asked to stop."""
        return self.pool.active

    def tick(self) -> Tick | None:
        """Reap, escalate, observe, decide, apply, record. None when the queue could not be read (the
        workers are left as they are and the next tick tries again)."""
        now = self._clock()
        exited, crashed = self.pool.reap()
        killed = self.pool.escalate(now)
        try:
            load = self._stats()
        except Exception as exc:  # a broker outage must not stop the supervisor
            log.warning("queue statistics unavailable (%s: %s); keeping %d worker(s)", type(exc).__name__, exc,
                        len(self.pool.active))
            return None
        current = self.target
        obs = Observation(now, load.waiting, load.in_flight, current)
        decision, self.state = decide(self.config, obs, self.state)
        self.target = decision.workers
        started, stopping = self.pool.reconcile(self.target, now, load.busy_pids)
        tick = Tick(now, load.waiting, load.in_flight, current, decision.workers, decision.endpoints, decision.reason,
                    live=len(self.pool.active), draining=len(self.pool.leaving), started=started,
                    stopping=stopping, exited=exited, crashed=crashed, killed=killed)
        write_decision(tick, self.decisions_path)
        return tick

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
        _, stopping = self.pool.reconcile(0, now)
        exited, crashed = self.pool.reap()
        killed: list[int] = []
        while self.pool.workers:
            sleep(poll_s)
            killed += self.pool.escalate(self._clock())
            e, c = self.pool.reap()
            exited += e
            crashed += c
        tick = Tick(now, 0, 0, len(stopping), 0, 0, f"shutdown: {len(stopping)} worker(s) drained", live=0,
                    draining=0, stopping=stopping, exited=exited, crashed=crashed, killed=killed)
        tick.t = self._clock()
        write_decision(tick, self.decisions_path)
