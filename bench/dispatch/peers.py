"""Celery 5 and Dramatiq as systems under test: their own worker commands (2 processes, one task at a time
each) on one broker, driven by sends from the harness. Timelines come from the tasks' record file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.dispatch import record
from bench.dispatch.common import BIN, ROOT, Procs, Timeline, base_env, wait_until
from bench.dispatch.servers import AMQP, REDIS

PROCESSES = 2
#: celery / dramatiq print this once their consumers are up; until then a send would wait in the queue
_READY = {"celery": "ready.", "dramatiq": "Worker process is ready for action."}


class _Peer:
    system = ""
    store = ""

    def __init__(self, broker: str, token: str, root: Path) -> None:
        self.broker, self.token, self.root = broker, token, root
        self.url = REDIS if broker == "redis" else AMQP
        self.record_path = root / "record.txt"
        self.env = base_env() | {"FQB_BROKER_URL": self.url, "FQB_QUEUE": token, "FQB_RECORD": str(self.record_path)}
        self.procs = Procs(root / "logs")

    def _ready(self) -> bool:
        return self.procs.log("worker").count(_READY[self.system]) >= self._ready_lines()

    def _ready_lines(self) -> int:
        return 1

    def wait_done(self, handles: Sequence[str], timeout_s: float) -> None:
        wanted = set(handles)
        wait_until(lambda: wanted <= set(record.read(self.record_path)), timeout_s,
                   f"{len(handles)} {self.system} tasks", poll_s=0.02, check=self.procs.check_alive)

    def timelines(self, sent: dict[str, float]) -> dict[str, Timeline]:
        runs = record.read(self.record_path)
        return {tag: Timeline(sent=t, enqueued=t, started=runs[tag][0], finished=runs[tag][1])
                for tag, t in sent.items() if tag in runs}

    def failures(self) -> int:
        return 0

    def after_warmup(self) -> None:
        pass

    def groups(self) -> dict[str, list[int]]:
        return {"workers": self.procs.pids()}

    def stop(self) -> None:
        self.procs.stop()

    def cleanup(self) -> None:
        """Queues and keys go with the run's token (bench.dispatch.servers)."""


class CeleryPeer(_Peer):
    system = "celery"

    def start(self) -> None:
        from bench.dispatch.celery_app import TASK, make_app

        argv = [str(BIN / "celery"), "-A", "bench.dispatch.celery_app", "worker", "--pool", "prefork",
                "--concurrency", str(PROCESSES), "-Q", self.token, "--without-gossip", "--without-mingle",
                "--without-heartbeat", "--loglevel", "INFO", "-n", f"{self.token}@%h"]
        self.procs.start("worker", argv, self.env)
        wait_until(self._ready, 90, "the celery worker", poll_s=0.2, check=self.procs.check_alive)
        self.app = make_app(self.url, self.token)
        self.task: Any = self.app.tasks[TASK]

    def thread_setup(self) -> None:
        # one publish per thread opens its producer connection before the measured burst
        pass

    def submit(self, tag: str) -> str:
        self.task.apply_async(args=(tag,))
        return tag

    def stop(self) -> None:
        super().stop()
        if hasattr(self, "app"):
            self.app.close()


class DramatiqPeer(_Peer):
    system = "dramatiq"

    def _ready_lines(self) -> int:
        return PROCESSES

    def start(self) -> None:
        from bench.dispatch.dramatiq_app import make

        argv = [str(BIN / "dramatiq"), "bench.dispatch.dramatiq_app:setup", "--processes", str(PROCESSES),
                "--threads", "1", "--queues", self.token, "--path", str(ROOT)]
        self.procs.start("worker", argv, self.env)
        wait_until(self._ready, 90, "the dramatiq workers", poll_s=0.2, check=self.procs.check_alive)
        self.dq_broker, self.actor = make(self.url, self.token)

    def thread_setup(self) -> None:
        pass

    def submit(self, tag: str) -> str:
        self.actor.send(tag)
        return tag

    def stop(self) -> None:
        super().stop()
        if hasattr(self, "dq_broker"):
            self.dq_broker.close()
