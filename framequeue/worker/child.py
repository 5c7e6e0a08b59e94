"""The supervisor's handle on its warm media child (framequeue.worker.sandbox): start it from the fork
server, hand it one job at a time, and retire it when it has run its share of jobs or a job did not end
cleanly. A child that is retired gets SIGTERM, then SIGKILL after a grace period."""

from __future__ import annotations

import contextlib
from typing import Any

from framequeue.worker.messages import ChildMessage, ChildSpec, Done, Failed, Run
from framequeue.worker.sandbox import UNCLEAN_ERRORS, child_main

#: how long a stopped child gets to exit by itself before it is killed
STOP_GRACE_S = 3.0


class MediaChild:
    def __init__(self, context: Any, name: str, max_jobs: int, memory_mb: int = 0) -> None:
        self._conn, child_conn = context.Pipe(duplex=True)
        self._process = context.Process(target=child_main, args=(child_conn, memory_mb), name=name)
        self._process.start()
        child_conn.close()
        #: jobs this child may still take; 0 retires it after the current one
        self._left = max(1, max_jobs)

    def run(self, spec: ChildSpec) -> None:
        self._left -= 1
        # a child that died while idle breaks the pipe: the supervisor then sees it gone and says so
        with contextlib.suppress(OSError):
            self._conn.send(Run.of(spec))

    def poll(self, timeout_s: float) -> ChildMessage | None:
        """The child's next message, or None when there is none within timeout_s (or the pipe broke)."""
        try:
            if self._conn.poll(timeout_s):
                msg: ChildMessage = self._conn.recv()
                return msg
        except (EOFError, OSError):
            return None
        return None

    def is_alive(self) -> bool:
        return bool(self._process.is_alive())

    @property
    def exitcode(self) -> int | None:
        code: int | None = self._process.exitcode
        return code

    def reusable_after(self, reply: Done | Failed | None) -> bool:
        """Whether the child may take another job after the one that ended with `reply` (None: the child
        sent no final message, it was stopped mid-job)."""
        if self._left <= 0 or not self.is_alive():
            return False
        return isinstance(reply, Done) or (isinstance(reply, Failed) and reply.code not in UNCLEAN_ERRORS)

    def stop(self) -> None:
        """SIGTERM asks the pipeline to stop at its next frame (and the child to exit); SIGKILL if it does
        not within the grace."""
        self._conn.close()
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(STOP_GRACE_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


__all__ = ["MediaChild"]
