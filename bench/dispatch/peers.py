"""Celery 5 and Dramatiq as systems under test: their own worker commands (2 processes, one task at a time
each) on one broker, bare or storing results, driven by sends from the harness (one at a time, or a batch
through the peer's own API). Timelines come from the tasks' record file in every configuration."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.dispatch import record
from bench.dispatch.common import BIN, ROOT, Procs, Timeline, base_env, wait_until
from bench.dispatch.servers import AMQP, PG, REDIS

PROCESSES = 2
#: celery / dramatiq print this once their consumers are up; until then a send would wait in the queue
_READY = {"celery": "ready.", "dramatiq": "Worker process is ready for action."}
#: result backend kind -> the variant's name (bench.dispatch.common.System.variant)
VARIANTS = {"": "", "redis": "redis-results", "postgres": "pg-results"}


def results_url(system: str, results: str) -> str:
    """The result backend's URL for FQB_RESULTS ("" bare)."""
    if not results:
        return ""
    if results == "redis":
        return REDIS
    if results == "postgres" and system == "celery":
        # Celery's SQLAlchemy backend on psycopg 3 (framequeue's driver); the tables go to the run's schema
        return "db+" + PG.replace("postgresql://", "postgresql+psycopg://", 1)
    raise ValueError(f"{system} has no {results} result backend here")


def results_servers(results: str) -> set[str]:
    """The shared servers a result backend writes to (for cleanup and CPU accounting)."""
    return {results} if results else set()


class _Peer:
    system = ""
    store = ""

    def __init__(self, broker: str, token: str, root: Path, results: str = "") -> None:
        self.broker, self.token, self.root = broker, token, root
        self.results = results
        self.variant = VARIANTS[results]
        self.url = REDIS if broker == "redis" else AMQP
        self.results_url = results_url(self.system, results)
        self.record_path = root / "record.txt"
        self.env = base_env() | {"FQB_BROKER_URL": self.url, "FQB_QUEUE": token, "FQB_RECORD": str(self.record_path),
                                 "FQB_RESULTS": self.results_url}
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
        """Bare: 0 (nothing is recorded). Storing results: the tasks that ran without a stored result, so that a
        configuration that stores nothing cannot pass for one that does (waits a little for the last ones)."""
        if not self.results:
            return 0
        ran = len(record.read(self.record_path))
        deadline = time.monotonic() + 5.0
        while (stored := self._stored()) < ran and time.monotonic() < deadline:
            time.sleep(0.1)
        return max(0, ran - stored)

    def _stored(self) -> int:
        """Results in the backend: Celery's SUCCESS rows or celery-task-meta keys, Dramatiq's result keys."""
        if self.results == "postgres":
            import psycopg
            from psycopg import sql

            with psycopg.connect(PG, connect_timeout=5) as conn:
                query = sql.SQL("SELECT count(*) FROM {}.celery_taskmeta WHERE status = 'SUCCESS'")
                row = conn.execute(query.format(sql.Identifier(self.token))).fetchone()
                return int(row[0]) if row else 0
        import redis

        pattern = f"{self.token}:celery-task-meta-*" if self.system == "celery" else f"{self.token}-results:*"
        client = redis.Redis.from_url(REDIS, socket_timeout=10)
        try:
            return sum(1 for _ in client.scan_iter(match=pattern, count=1000))
        finally:
            client.close()

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

        if self.results == "postgres":
            _create_schema(self.token)
        argv = [str(BIN / "celery"), "-A", "bench.dispatch.celery_app", "worker", "--pool", "prefork",
                "--concurrency", str(PROCESSES), "-Q", self.token, "--without-gossip", "--without-mingle",
                "--without-heartbeat", "--loglevel", "INFO", "-n", f"{self.token}@%h"]
        self.procs.start("worker", argv, self.env)
        wait_until(self._ready, 90, "the celery worker", poll_s=0.2, check=self.procs.check_alive)
        self.app = make_app(self.url, self.token, self.results_url)
        self.task: Any = self.app.tasks[TASK]

    def thread_setup(self) -> None:
        # one publish per thread opens its producer connection before the measured burst
        pass

    def submit(self, tag: str) -> str:
        self.task.apply_async(args=(tag,))
        return tag

    def submit_many(self, tags: Sequence[str]) -> list[str]:
        """Celery's batching API: a group, sent with one producer (one publish per task)."""
        from celery import group

        group(self.task.s(tag) for tag in tags).apply_async()
        return list(tags)

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
        self.dq_broker, self.actor = make(self.url, self.token, self.results_url)

    def thread_setup(self) -> None:
        pass

    def submit(self, tag: str) -> str:
        self.actor.send(tag)
        return tag

    def submit_many(self, tags: Sequence[str]) -> list[str]:
        """Dramatiq's batching API: a group, run (each message enqueued on this broker)."""
        import dramatiq

        batch = dramatiq.group([self.actor.message(tag) for tag in tags], broker=self.dq_broker)  # type: ignore[no-untyped-call]
        batch.run()  # type: ignore[no-untyped-call]
        return list(tags)

    def stop(self) -> None:
        super().stop()
        if hasattr(self, "dq_broker"):
            self.dq_broker.close()


def _create_schema(schema: str) -> None:
    """Celery's SQLAlchemy backend creates its tables, not the schema they are named into."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
