"""`framequeue up`: the API in this process, a pool of worker processes beside it, restarted if they die.

SIGTERM/SIGINT stop the API, then drain the workers (each finishes or hands back its job) and exit.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import fields

from framequeue.config import Settings, env_var

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


def spawn(args: list[str], settings: Settings, log_level: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "framequeue", "--log-level", log_level, *args]
    return subprocess.Popen(cmd, env=settings_env(settings))


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
        self._procs: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._watch = threading.Thread(target=self._keep_alive, name="worker-pool", daemon=True)

    def start(self) -> None:
        self._procs = [self._spawn() for _ in range(self._settings.workers)]
        self._watch.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return spawn(["worker"], self._settings, self._log_level)

    def _keep_alive(self) -> None:
        while not self._stopping.wait(RESTART_BACKOFF_S):
            for i, proc in enumerate(self._procs):
                if proc.poll() is not None and not self._stopping.is_set():
                    log.warning("worker pid %d exited with %s; starting another", proc.pid, proc.returncode)
                    self._procs[i] = self._spawn()

    def stop(self) -> None:
        self._stopping.set()
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + self._settings.drain_s + 10
        for proc in self._procs:
            stop_process(proc, max(0.1, deadline - time.monotonic()))
