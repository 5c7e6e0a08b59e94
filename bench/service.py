"""framequeue as it runs for users: a real `framequeue up` (API + worker pool) in a temp FQ_HOME, driven
through its HTTP API, with the process tree's memory and CPU sampled from /proc while it works."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import BENCH, CLASSES, MODEL, PYTHON, RESULTS, ROOT
from framequeue.client import TERMINAL, Client

#: how often the job list is read while jobs run; every request costs the API a little CPU
POLL_S = 0.2
#: /proc sampling period for memory
SAMPLE_S = 0.1
_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def epoch(iso: str | None) -> float:
    if iso is None:
        return float("nan")
    return dt.datetime.fromisoformat(iso).timestamp()


# -- /proc -------------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                kids.extend(int(x) for x in fh.read().split())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return kids


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def cpu_s(pid: int) -> float:
    """utime + stime of the process and of its reaped children (cutime, cstime)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return sum(int(x) for x in fields[11:15]) / _TICK


def tree(pid: int) -> list[tuple[int, int]]:
    """(pid, depth below `pid`) for pid and all its descendants."""
    out, todo = [], [(pid, 0)]
    while todo:
        p, d = todo.pop()
        out.append((p, d))
        todo.extend((c, d + 1) for c in children(p))
    return out


@dataclass
class MemoryPeaks:
    #: largest sum of VmRSS over one worker's tree (worker + fork server + media child)
    worker_tree_kib: int = 0
    #: largest VmRSS of a single media child (the process that decodes, infers and encodes)
    media_child_kib: int = 0
    samples: int = 0


class TreeSampler:
    """Samples the `framequeue up` tree every SAMPLE_S in a thread; `begin`/`end` bracket a measurement.

    The children of `up` are its workers; below a worker: its fork server (depth 1), and the media
    children the fork server forks, one per job (depth 2).
    """

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self._lock = threading.Lock()
        self._window: MemoryPeaks | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def begin(self) -> None:
        with self._lock:
            self._window = MemoryPeaks()

    def end(self) -> MemoryPeaks:
        with self._lock:
            window, self._window = self._window, None
        return window or MemoryPeaks()

    def cpu_s(self) -> float:
        """CPU of the whole tree so far (live processes and the reaped ones counted in their parents)."""
        return sum(cpu_s(p) for p, _ in tree(self.root_pid))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            workers = children(self.root_pid)
            per_worker, media = [], 0
            for w in workers:
                total = 0
                for p, depth in tree(w):
                    rss = rss_kib(p)
                    total += rss
                    if depth == 2:
                        media = max(media, rss)
                per_worker.append(total)
            with self._lock:
                if self._window is not None:
                    self._window.worker_tree_kib = max([self._window.worker_tree_kib, *per_worker])
                    self._window.media_child_kib = max(self._window.media_child_kib, media)
                    self._window.samples += 1


# -- the deployment ----------------------------------------------------------------------------------


@dataclass
class JobRun:
    """One job as the client and the server saw it, with the media child's trace when there is one."""

    id: str
    clip: str
    submit_epoch: float
    record: dict[str, Any] = field(default_factory=dict)
    seen_done_epoch: float = float("nan")
    trace: dict[str, Any] | None = None

    @property
    def created(self) -> float:
        return epoch(self.record.get("created_at"))

    @property
    def started(self) -> float:
        return epoch(self.record.get("started_at"))

    @property
    def finished(self) -> float:
        return epoch(self.record.get("finished_at"))

    @property
    def frames(self) -> int:
        return int(self.record["progress"]["frames_total"] or 0)

    def summary(self) -> dict[str, Any]:
        t = self.trace or {}
        stats = t.get("stats", {})
        run_start = t.get("run_start_epoch", float("nan"))
        first_frame = run_start + stats.get("first_frame_s", float("nan"))
        return {
            "id": self.id,
            "clip": self.clip,
            "status": self.record.get("status"),
            "frames": self.frames,
            # submit -> succeeded, server clock (created_at -> finished_at)
            "e2e_s": self.finished - self.created,
            # the same seen by the client: before POST /v1/jobs -> a poll saw "succeeded"
            "client_e2e_s": self.seen_done_epoch - self.submit_epoch,
            "queue_s": self.started - self.created,
            "claim_to_run_s": run_start - self.started,
            "run_to_first_frame_s": stats.get("first_frame_s", float("nan")),
            "submit_to_first_frame_s": first_frame - self.created,
            "client_submit_to_first_frame_s": first_frame - self.submit_epoch,
            "run_wall_s": stats.get("wall_s", float("nan")),
            "run_end_to_succeeded_s": self.finished - t.get("run_end_epoch", float("nan")),
            "media_child_cpu_s": t.get("child_cpu_s", float("nan")),
            "stats": stats,
        }


class Deployment:
    """`framequeue up` with FQ_WORKERS/FQ_WORKER_THREADS in a temp FQ_HOME, traced (bench/trace)."""

    def __init__(self, name: str, workers: int, worker_threads: int) -> None:
        self.name = name
        self.workers, self.worker_threads = workers, worker_threads
        self.dir = Path(tempfile.mkdtemp(prefix=f"fq-bench-{name}-"))
        self.home = self.dir / "home"
        self.trace_file = self.dir / "trace.jsonl"
        self.log_file = RESULTS / "logs" / f"up-{name}.log"
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FQ_")}
        self.env.update({
            "FQ_HOME": str(self.home), "FQ_PORT": str(self.port), "FQ_WORKERS": str(workers),
            "FQ_WORKER_THREADS": str(worker_threads), "FQ_LOG_LEVEL": "info", "FQBENCH_TRACE": str(self.trace_file),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(BENCH / "trace"), str(ROOT), os.environ.get("PYTHONPATH")) if p
            ),
        })
        self.client = Client(f"http://127.0.0.1:{self.port}", timeout_s=60)
        self.proc: subprocess.Popen[bytes] | None = None
        self.sampler: TreeSampler | None = None
        self._keys: dict[Path, str] = {}

    def start(self) -> None:
        subprocess.run(
            [PYTHON, "-m", "framequeue", "models", "add", "yolox_nano", str(MODEL), "--format", "yolox",
             "--classes", str(CLASSES)], env=self.env, check=True, capture_output=True, timeout=300,
        )
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("wb") as log:
            self.proc = subprocess.Popen([PYTHON, "-m", "framequeue", "up"], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True, cwd=self.dir)
        self.client.wait_ready(120)
        deadline = time.monotonic() + 120
        while self.log_file.read_text(errors="replace").count(" started (threads per job") < self.workers:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"workers of {self.name} did not start; see {self.log_file}")
            time.sleep(0.2)
        self.sampler = TreeSampler(self.proc.pid).start()

    def upload(self, path: Path) -> str:
        if path not in self._keys:
            self._keys[path] = str(self.client.upload(path)["key"])
        return self._keys[path]

    def submit(self, clip: str, path: Path) -> JobRun:
        key = self.upload(path)
        t = time.time()
        record = self.client.submit({"pipeline": "detect", "input": {"key": key}, "params": {}})
        return JobRun(record["id"], clip, t, record)

    def wait(self, runs: list[JobRun], timeout_s: float = 3600) -> None:
        """Poll the job list until every run ends; fills records, the time each end was seen, traces."""
        open_ids = {r.id: r for r in runs}
        deadline = time.monotonic() + timeout_s
        while open_ids:
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs still running after {timeout_s} s: {sorted(open_ids)}")
            time.sleep(POLL_S)
            page = self.client.jobs(limit=len(runs) + 5)["jobs"]  # the newest jobs are ours
            now = time.time()
            for rec in page:
                run = open_ids.get(rec["id"])
                if run is not None and rec["status"] in TERMINAL:
                    run.record, run.seen_done_epoch = rec, now
                    del open_ids[rec["id"]]
        for run in runs:
            if run.record["status"] != "succeeded":
                raise RuntimeError(f"job {run.id} ({run.clip}) ended {run.record['status']}: {run.record['error']}")
        self._attach_traces(runs)

    def _attach_traces(self, runs: list[JobRun]) -> None:
        if not self.trace_file.is_file():
            return
        entries = [json.loads(line) for line in self.trace_file.read_text().splitlines() if line.strip()]
        for run in runs:
            mine = [e for e in entries if f"/{run.id}-" in e["input"] and "error" not in e]
            run.trace = mine[-1] if mine else None

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.client.close()
        shutil.rmtree(self.dir, ignore_errors=True)
