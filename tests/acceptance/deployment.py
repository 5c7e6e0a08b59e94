"""framequeue as real processes for acceptance and fault tests: `up`, `api` and `worker` started with
their own FQ_HOME, on a free port, logs in files, stopped (process groups) at the end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from framequeue.client import Client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Deployment:
    def __init__(self, root: Path, **settings: Any) -> None:
        self.root = root
        self.home = root / "home"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FQ_")}
        self.env.update({"FQ_HOME": str(self.home), "FQ_PORT": str(self.port), "FQ_WEBHOOK_ALLOW_PRIVATE": "1",
                         "PYTHONUNBUFFERED": "1"})
        self.env.update({f"FQ_{k.upper()}": str(v) for k, v in settings.items()})
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.client = Client(self.base_url, timeout_s=30)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "framequeue", *args], env=self.env, capture_output=True,
                              text=True, check=check, timeout=120)

    def start(self, name: str, *args: str, wrap: Sequence[str] = (), **settings: Any) -> subprocess.Popen[bytes]:
        """Start `framequeue ARGS` as process NAME; keyword settings become FQ_* for this process only (e.g.
        database_url=, broker_url= as another host reaches them). WRAP prefixes the command line with one that
        must exec it in place, so the process is still NAME's (e.g. ["ip", "netns", "exec", NETNS])."""
        env = {**self.env, **{f"FQ_{k.upper()}": str(v) for k, v in settings.items()}}
        with open(self.root / f"{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen([*wrap, sys.executable, "-m", "framequeue", *args], env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 60) -> None:
        self.client.wait_ready(timeout_s)

    def register_yolox(self, model_dir: Path) -> None:
        self.cli("models", "add", "yolox_nano", str(model_dir / "yolox_nano.onnx"), "--format", "yolox",
                 "--classes", str(model_dir / "coco_classes.txt"))

    def register_lstr(self, model_dir: Path) -> None:
        self.cli("models", "add", "lstr", str(model_dir / "lstr_360x640.onnx"), "--format", "lstr")

    def register_faces(self, shared_models: Path) -> None:
        """YuNet for faces and FaceMesh (with its canonical face) for landmarks, as the driver pipeline wants."""
        self.cli("models", "add", "yunet", str(shared_models / "yunet" / "yunet_s_640_640.onnx"), "--format", "yunet")
        mediapipe = shared_models / "mediapipe"
        self.cli("models", "add", "facemesh", str(mediapipe / "face_landmark.tflite"), "--format", "facemesh",
                 "--canonical-face", str(mediapipe / "canonical_face_model.obj"))

    def signal(self, name: str, sig: int, group: bool = False) -> None:
        proc = self.procs[name]
        if group:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)

    def submit_file(
        self, path: Path, params: dict[str, Any] | None = None, pipeline: str = "detect", **extra: Any
    ) -> dict[str, Any]:
        key = self.client.upload(path)["key"]
        return self.client.submit({"pipeline": pipeline, "input": {"key": key}, "params": params or {}, **extra})

    def wait_for(self, job_id: str, pred: Any, timeout_s: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            record = self.client.job(job_id)
            if pred(record):
                return record
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting on job {job_id}: {record}")
            time.sleep(0.2)

    def wait_done(self, job_id: str, timeout_s: float = 180) -> dict[str, Any]:
        return self.wait_for(job_id, lambda r: r["status"] in {"succeeded", "failed", "cancelled", "expired"},
                             timeout_s)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGCONT)
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.client.close()
