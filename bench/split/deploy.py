"""Real framequeue processes for one run: `framequeue api` (unpinned: it is nearly idle) and one
`framequeue worker` per core, each pinned with `taskset -c <core>` (its fork server and media children
inherit the pin), on the embedded deployment (SQLite and local objects in a temp FQ_HOME)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import CLASSES, MODEL, PYTHON, ROOT
from bench.service import free_port
from framequeue.client import TERMINAL, Client

#: a 30-minute video unsplit on one core runs past the default 900 s timeout and the 3600 s ceiling
TIMEOUT_S = 4 * 3600.0
POLL_S = 1.0


class Deployment:
    def __init__(self, label: str, cores: list[int], log_dir: Path) -> None:
        self.label, self.cores = label, cores
        self.dir = Path(tempfile.mkdtemp(prefix=f"fq-split-{label}-"))
        self.log_dir = log_dir
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FQ_")} | {
            "FQ_HOME": str(self.dir / "home"), "FQ_PORT": str(self.port), "FQ_LOG_LEVEL": "info",
            "FQ_WORKER_THREADS": "1", "FQ_MAX_RUNTIME_CEILING_S": str(TIMEOUT_S),
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        }
        self.client = Client(f"http://127.0.0.1:{self.port}", timeout_s=60)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def _start(self, name: str, argv: list[str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{self.label}-{name}.log").open("wb") as log:
            self.procs[name] = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True, cwd=self.dir)

    def start(self) -> None:
        subprocess.run([PYTHON, "-m", "framequeue", "models", "add", "yolox_nano", str(MODEL), "--format", "yolox",
                        "--classes", str(CLASSES)], env=self.env, check=True, capture_output=True, timeout=300)
        self._start("api", [PYTHON, "-m", "framequeue", "api"])
        self.client.wait_ready(120)
        for core in self.cores:
            self._start(f"worker{core}", ["taskset", "-c", str(core), PYTHON, "-m", "framequeue", "worker"])
        deadline = time.monotonic() + 120
        for core in self.cores:
            log = self.log_dir / f"{self.label}-worker{core}.log"
            while " started (threads per job" not in log.read_text(errors="replace"):
                if time.monotonic() > deadline or self.procs[f"worker{core}"].poll() is not None:
                    raise RuntimeError(f"worker on core {core} did not start; see {log}")
                time.sleep(0.2)

    def run(self, path: Path, params: dict[str, Any]) -> dict[str, Any]:
        """Upload, submit, wait for the end; the job's record and, for a split job, its segments' records."""
        key = self.client.upload(path)["key"]
        job_id = self.client.submit(
            {"pipeline": "detect", "input": {"key": key}, "params": params, "timeout_s": TIMEOUT_S}
        )["id"]
        deadline = time.monotonic() + TIMEOUT_S
        while (record := dict(self.client.job(job_id)))["status"] not in TERMINAL:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {record['status']}")
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} of {self.label} exited ({proc.returncode})")
            time.sleep(POLL_S)
        segments = [dict(self.client.job(s["id"])) for s in record.get("segments") or []]
        return {"job": record, "segments": segments, "worker_cores": self.worker_cores()}

    def worker_cores(self) -> dict[str, int]:
        """Worker pid (the `host:pid` of attempt records ends with it; taskset execs in place) -> its core."""
        return {str(self.procs[f"worker{core}"].pid): core for core in self.cores}

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.client.close()
        shutil.rmtree(self.dir, ignore_errors=True)
