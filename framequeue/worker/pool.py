"""`framequeue up`: the API in this process, a pool of worker processes beside it, restarted if they die.

SIGTERM/SIGINT stop the API, then drain the workers (each finishes or hands back its job) and exit.

The workers write their metrics into the pool's `PoolMetrics` folder (<home>/metrics, emptied at each
start), which the API's /metrics reads. With FQ_METRICS_PORT set, the pool serves all its workers'
metrics on that one port itself (its workers open none, so several never fight over it).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import fields, replace

from framequeue.config import Settings, env_var
from framequeue.metrics import PoolMetrics

log = logging.getLogger("framequeue.up")

#: a worker that dies sooner than this after its start is not restarted in a loop faster than this
RESTART_BACKOFF_S = 2.0


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process these same settings."""
    env = dict(os.environ)
    for f in fields(settings):
        value = getattr(settings, f.name)
        env[env_var(f.name)] = str(int(value) if isinstance(value, bool) else value)
    return env


def spawn(args: list[str], settings: Settings, log_level: str,
          extra_env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "framequeue", "--log-level", log_level, *args]
    return subprocess.Popen(cmd, env={**settings_env(settings), **(extra_env or {})})


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM, wait up to timeout_s, then SIGKILL."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class WorkerPool:
    def __init__(self, settings: Settings, log_level: str) -> None:
        self._settings, self._log_level = settings, log_level
        #: the workers' metrics, merged (framequeue.metrics.PoolMetrics); the API reads metrics.path
        self.metrics = PoolMetrics(settings.home / "metrics")
        # the metrics port is the pool's, not each worker's
        self._worker_settings = replace(settings, metrics_port=0)
        self._stop_metrics: Callable[[], None] | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._watch = threading.Thread(target=self._keep_alive, name="worker-pool", daemon=True)

    def start(self) -> None:
        self.metrics.reset()
        if self._settings.metrics_port:
            self._stop_metrics = self.metrics.serve(self._settings.metrics_port, self._settings.metrics_host)
            log.info("workers' metrics on http://%s:%d/metrics", self._settings.metrics_host,
                     self._settings.metrics_port)
        self._procs = [self._spawn() for _ in range(self._settings.workers)]
        self._watch.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return spawn(["worker"], self._worker_settings, self._log_level, extra_env=self.metrics.env())

    def _keep_alive(self) -> None:
        while not self._stopping.wait(RESTART_BACKOFF_S):
            for i, proc in enumerate(self._procs):
                if proc.poll() is not None and not self._stopping.is_set():
                    log.warning("worker pid %d exited with %s; starting another", proc.pid, proc.returncode)
                    self.metrics.process_dead(proc.pid)
                    self._procs[i] = self._spawn()

    def stop(self) -> None:
        self._stopping.set()
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + self._settings.drain_s + 10
        for proc in self._procs:
            stop_process(proc, max(0.1, deadline - time.monotonic()))
            self.metrics.process_dead(proc.pid)
        if self._stop_metrics is not None:
            self._stop_metrics()
