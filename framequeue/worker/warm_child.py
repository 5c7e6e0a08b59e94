"""The worker's warm media child, and what a child's death means for the job it ran.

The child is started before the first job (its fork server imports PyAV, OpenCV and ONNX Runtime once),
kept from job to job, and replaced by a new one after it retires (framequeue.worker.child).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from multiprocessing import forkserver

from framequeue.config import Settings
from framequeue.errors import ResourceExhausted, WorkerCrashed
from framequeue.worker.child import MediaChild
from framequeue.worker.messages import Failed
from framequeue.worker.sandbox import PRELOAD

#: a media process killed by one of these crashed in native code (a decoder): the same bytes crash it
#: again, so such a job gets at most this many attempts whatever its max_attempts
NATIVE_CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT})
MAX_NATIVE_CRASH_ATTEMPTS = 2


class WarmChild:
    """Holds at most one media child, and starts another when the last one retired or died."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._mp = mp.get_context("forkserver")
        self._mp.set_forkserver_preload(PRELOAD)
        self._child: MediaChild | None = None
        self._started = 0

    def start(self) -> None:
        """Start the fork server and a first child now, not on the first job's clock."""
        forkserver.ensure_running()
        self.get()

    def get(self) -> MediaChild:
        if self._child is None or not self._child.is_alive():
            self._started += 1
            name = f"media-{os.getpid()}-{self._started}"
            self._child = MediaChild(self._mp, name, self._settings.child_max_jobs, self._settings.child_memory_mb)
        return self._child

    def retire(self) -> None:
        if self._child is not None:
            self._child.stop()
            self._child = None


def died(attempts: int, exitcode: int | None) -> Failed:
    """The final message for a media child that died without an answer, in the job's `attempts`-th
    attempt."""
    if exitcode == -signal.SIGXCPU:
        return Failed.of(ResourceExhausted("the job ran past its CPU-time limit"))
    if exitcode is not None and exitcode < 0 and -exitcode in NATIVE_CRASH_SIGNALS:
        name = signal.Signals(-exitcode).name
        retry = attempts < MAX_NATIVE_CRASH_ATTEMPTS
        times = "" if retry else f" in {attempts} attempts; a crash on the same input repeats"
        return Failed.of(WorkerCrashed(f"the media process crashed ({name}){times}"), retryable=retry)
    return Failed.of(WorkerCrashed(f"the media process died (exit code {exitcode})"))


__all__ = ["MAX_NATIVE_CRASH_ATTEMPTS", "NATIVE_CRASH_SIGNALS", "WarmChild", "died"]
