"""framequeue as users run it: `framequeue api` and two `framequeue worker` processes with their own
FQ_HOME, on one store/broker pair, driven over HTTP (POST /v1/jobs, or POST /v1/jobs:batch through
Client.submit_many). Job timelines come from the job records."""

from __future__ import annotations

import datetime as dt
import os
import signal
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.dispatch.common import PYTHON, Procs, Timeline, base_env, free_port, wait_until
from bench.dispatch.servers import fq_broker_url, fq_store_url
from framequeue.client import Client

WORKERS = 2
#: how often the harness asks whether the burst is done (one cheap list query each)
DONE_POLL_S = 0.2


def epoch(iso: str | None) -> float:
    if iso is None:
        return float("nan")
    return dt.datetime.fromisoformat(iso).timestamp()


class FrameQueue:
    system = "framequeue"
    variant = ""

    def __init__(self, label: str, store: str, broker: str, token: str, root: Path, *, probe_dir: Path | None = None,
                 log_level: str = "info") -> None:
        self.label, self.store, self.broker, self.token = label, store, broker, token
        self.root = root
        self.home = root / "home"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        db = str(self.home / "fq.db")
        self.env = base_env() | {
            "FQ_HOME": str(self.home),
            "FQ_PORT": str(self.port),
            "FQ_DATABASE_URL": fq_store_url(store, token, db),
            "FQ_BROKER_URL": fq_broker_url(broker, token, db),
            "FQ_LOG_LEVEL": log_level,
        }
        #: with a probe dir, the processes run under bench.dispatch.probe, which times their parts
        self.probe_dir = probe_dir
        if probe_dir is not None:
            self.env["FQB_PROBE_DIR"] = str(probe_dir)
        self.procs = Procs(root / "logs")
        self._local = threading.local()
        self._main: Client | None = None
        self._key = ""

    # -- lifecycle -------------------------------------------------------------------------------------

    def _argv(self, *args: str) -> list[str]:
        module = "bench.dispatch.probe" if self.probe_dir is not None else "framequeue"
        return [PYTHON, "-m", module, *args]

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.procs.start("api", self._argv("api"), self.env)
        self._main = Client(self.base_url, timeout_s=60)
        wait_until(self._main.ready, 90, "the API to be ready", poll_s=0.2, check=self.procs.check_alive)
        for i in range(WORKERS):
            self.procs.start(f"worker{i}", self._argv("worker"), self.env)
        with tempfile.NamedTemporaryFile("wb", suffix=".bin", delete=False) as fh:
            fh.write(b"\0" * 1024)
            src = Path(fh.name)
        try:
            self._key = self._main.upload(src)["key"]
        finally:
            src.unlink()

    def stop(self) -> None:
        self.procs.stop()
        if self._main is not None:
            self._main.close()

    def cleanup(self) -> None:
        """The queue/schema on shared servers go with the run's token (bench.dispatch.servers)."""

    def groups(self) -> dict[str, list[int]]:
        return {"api": [self.procs.procs["api"].pid],
                "workers": [p.pid for name, p in self.procs.procs.items() if name.startswith("worker")]}

    # -- jobs ------------------------------------------------------------------------------------------

    def after_warmup(self) -> None:
        """Probed processes forget the warm-up (the fork server's start, first imports) on SIGUSR1."""
        if self.probe_dir is not None:
            for pid in self.procs.pids():
                os.kill(pid, signal.SIGUSR1)
            time.sleep(0.5)

    def thread_setup(self) -> None:
        self._local.client = Client(self.base_url, timeout_s=60)

    def _client(self) -> Client:
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            self.thread_setup()
            client = self._local.client
        return client

    def submit(self, tag: str) -> str:
        record = self._client().submit({"pipeline": "noop", "input": {"key": self._key}})
        job_id: str = record["id"]
        return job_id

    def submit_many(self, tags: Sequence[str]) -> list[str]:
        """One POST /v1/jobs:batch per 1,000 jobs (Client.submit_many): rows in one transaction, one publish."""
        body = {"pipeline": "noop", "input": {"key": self._key}}
        items = self._client().submit_many([body] * len(tags))
        refused = [item for item in items if "job" not in item]
        if refused:
            raise RuntimeError(f"{len(refused)} of {len(items)} batch items refused, e.g. {refused[0]}")
        return [item["job"]["id"] for item in items]

    def _count(self, status: str) -> int:
        assert self._main is not None
        return len(self._main.jobs(status, limit=1)["jobs"])

    def wait_done(self, handles: Sequence[str], timeout_s: float) -> None:
        """Every submit has returned, so each job has its row: none queued and none running means all
        ended. End times come from the records, so this poll's period does not bias the result."""
        wait_until(lambda: self._count("queued") == 0 and self._count("running") == 0, timeout_s,
                   f"{len(handles)} framequeue jobs", poll_s=DONE_POLL_S, check=self.procs.check_alive)

    def _records(self, status: str, wanted: set[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        after: str | None = None
        with httpx.Client(base_url=self.base_url, timeout=60) as http:
            while len(out) < len(wanted):
                params: dict[str, Any] = {"status": status, "limit": 500}
                if after:
                    params["after"] = after
                page = http.get("/v1/jobs", params=params).raise_for_status().json()
                out.update({r["id"]: r for r in page["jobs"] if r["id"] in wanted})
                after = page["next_after"]
                if not after:
                    break
        return out

    def timelines(self, sent: dict[str, float]) -> dict[str, Timeline]:
        records = self._records("succeeded", set(sent))
        return {
            job_id: Timeline(sent=sent[job_id], enqueued=epoch(r["created_at"]), started=epoch(r["started_at"]),
                             finished=epoch(r["finished_at"]))
            for job_id, r in records.items()
        }

    def failures(self) -> int:
        assert self._main is not None
        return sum(len(self._main.jobs(s, limit=500)["jobs"]) for s in ("failed", "expired", "cancelled"))


def make_root(parent: Path, label: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"fq-dispatch-{label.replace('+', '-')}-", dir=parent))
