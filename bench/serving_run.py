"""The measurements behind `python -m bench.serving`: `framequeue serve-models` processes driven by
tritonclient's asyncio clients (N callers, one frame per request), and the dashcam clip through an API +
1 worker deployment with the model in-process or behind a registered OIP v2 endpoint.

Every measurement carries the machine's busy cores that were not ours (/proc/stat busy minus the CPU of
this process and all its descendants), as bench/dispatch does.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import numpy as np
import numpy.typing as npt

from bench.common import CLASSES, DASHCAM, MODEL, PYTHON, ROOT, Window
from bench.service import cpu_s, epoch, free_port, tree
from framequeue.client import Client

MODEL_NAME: Final = "yolox_nano"
#: distinct real frames the callers cycle through
FRAMES: Final = 16
READY_TIMEOUT_S: Final = 60.0


def log(msg: str) -> None:
    print(f"[serving {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def descendants_cpu_s() -> float:
    """CPU of this process's live descendants (each with its reaped children): Window's `extra_own_s`."""
    me = os.getpid()
    return sum(cpu_s(p) for p, _ in tree(me) if p != me)


def tree_cpu_s(pid: int) -> float:
    return sum(cpu_s(p) for p, _ in tree(pid))


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FQ_")}
    env.update({"FQ_HOME": str(home), "PYTHONUNBUFFERED": "1", "FQ_WEBHOOK_ALLOW_PRIVATE": "1"})
    return env


def build_repository(home: Path) -> None:
    """`framequeue models add yolox_nano` into HOME/models, as an operator (and the acceptance tests) do."""
    subprocess.run(
        [PYTHON, "-m", "framequeue", "models", "add", MODEL_NAME, str(MODEL), "--format", "yolox",
         "--classes", str(CLASSES)],
        env=env_for(home), check=True, capture_output=True, timeout=120, cwd=ROOT,
    )


def letterboxed_frames(n: int = FRAMES) -> npt.NDArray[np.float32]:
    """The dashcam clip's first N frames letterboxed to 416x416, as a worker prepares them: N x 3 x 416 x 416."""
    import cv2

    from framequeue.media.letterbox import letterbox

    capture = cv2.VideoCapture(str(DASHCAM))
    images = []
    for _ in range(n):
        ok, image = capture.read()
        if not ok:
            break
        images.append(np.asarray(image, np.uint8))
    capture.release()
    return np.stack([letterbox(img, (416, 416))[0] for img in images]).astype(np.float32)


# -- processes ---------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_s(self) -> float:
        return tree_cpu_s(self.process.pid)

    def tail(self, n: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start(name: str, home: Path, *args: str, **settings: str) -> Proc:
    env = {**env_for(home), **{f"FQ_{k.upper()}": v for k, v in settings.items()}}
    log_path = home.parent / f"{name}.log"
    with log_path.open("ab") as fh:
        process = subprocess.Popen([PYTHON, "-m", "framequeue", *args], env=env, stdout=fh,
                                   stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    return Proc(name, process, log_path)


@dataclass
class ModelServer:
    proc: Proc
    batching: bool
    http_port: int
    grpc_port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}"

    def stats(self) -> dict[str, int]:
        """Cumulative requests, rows (inferences) and executions of yolox_nano on this server."""
        rows = httpx.get(f"{self.http_url}/v2/models/{MODEL_NAME}/stats", timeout=10).json()["model_stats"]
        return {
            "requests": sum(int(r["inference_stats"]["success"]["count"]) for r in rows),
            "rows": sum(int(r["inference_count"]) for r in rows),
            "executions": sum(int(r["execution_count"]) for r in rows),
            "queue_ns": sum(int(r["inference_stats"]["queue"]["ns"]) for r in rows),
            "compute_ns": sum(int(r["inference_stats"]["compute_infer"]["ns"]) for r in rows),
        }


def start_server(home: Path, batching: bool) -> ModelServer:
    http_port, grpc_port = free_port(), free_port()
    args = ["serve-models", "--http-port", str(http_port), "--grpc-port", str(grpc_port), "--memory-budget-mb", "256"]
    if not batching:
        args.append("--no-batching")
    server = ModelServer(start(f"serve-{'on' if batching else 'off'}", home, *args, log_level="warning"),
                         batching, http_port, grpc_port)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if server.proc.process.poll() is not None:
            raise RuntimeError(f"serve-models exited:\n{server.proc.tail()}")
        try:
            if httpx.get(f"{server.http_url}/v2/health/ready", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"serve-models not ready after {READY_TIMEOUT_S:.0f} s:\n{server.proc.tail()}")
        time.sleep(0.2)


# -- (1) N concurrent callers, one frame per request -----------------------------------------------------


@dataclass
class Point:
    """One caller count on one server, one repeat."""

    batching: bool
    callers: int
    requests: int
    wall_s: float
    latencies_ms: list[float]
    server_cpu_s: float
    client_cpu_s: float
    #: deltas of the server's statistics over the measured requests
    server: dict[str, int]
    window: dict[str, float]
    errors: int = 0

    @property
    def throughput(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        s = self.server
        return {
            "batching": self.batching, "callers": self.callers, "requests": self.requests, "wall_s": self.wall_s,
            "inferences_per_s": self.throughput,
            "p50_ms": float(np.percentile(self.latencies_ms, 50)) if self.latencies_ms else float("nan"),
            "p99_ms": float(np.percentile(self.latencies_ms, 99)) if self.latencies_ms else float("nan"),
            "mean_batch_rows": s["rows"] / s["executions"] if s.get("executions") else float("nan"),
            "server_queue_ms_mean": s["queue_ns"] / 1e6 / s["requests"] if s.get("requests") else float("nan"),
            "server_compute_ms_per_execution": s["compute_ns"] / 1e6 / s["executions"] if s.get("executions")
            else float("nan"),
            "server_cpu_ms_per_inference": 1000 * self.server_cpu_s / self.requests,
            "client_cpu_ms_per_inference": 1000 * self.client_cpu_s / self.requests,
            "server_cores": self.server_cpu_s / self.wall_s,
            "errors": self.errors, "server_stats": s, "window": self.window, "latencies_ms": self.latencies_ms,
        }


class Caller:
    """tritonclient's asyncio client (gRPC or HTTP) to one server; one shared connection for all callers."""

    def __init__(self, server: ModelServer, protocol: str) -> None:
        self.protocol = protocol
        if protocol == "grpc":
            import tritonclient.grpc.aio as client_mod

            self.client: Any = client_mod.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
        else:
            import tritonclient.http.aio as client_mod

            self.client = client_mod.InferenceServerClient(f"127.0.0.1:{server.http_port}", conn_limit=64)
        self.mod: Any = client_mod

    async def infer(self, frame: npt.NDArray[np.float32]) -> None:
        tensor = self.mod.InferInput("images", list(frame.shape), "FP32")
        if self.protocol == "grpc":
            tensor.set_data_from_numpy(frame)
            result = await self.client.infer(MODEL_NAME, [tensor], model_version="1")
        else:
            tensor.set_data_from_numpy(frame, binary_data=True)
            out = self.mod.InferRequestedOutput("output", binary_data=True)
            result = await self.client.infer(MODEL_NAME, [tensor], model_version="1", outputs=[out])
        answer = result.as_numpy("output")
        if answer is None or answer.shape[0] != frame.shape[0]:
            raise RuntimeError(f"bad answer: {None if answer is None else answer.shape}")

    async def close(self) -> None:
        await self.client.close()


async def _drive(caller: Caller, frames: npt.NDArray[np.float32], callers: int, requests: int, warmup: int,
                 begin: Callable[[], None]) -> tuple[list[float], float, int]:
    """`callers` coroutines, each `warmup` then `requests` sequential requests of one frame; the measured
    part starts (`begin` called, then the clock) when every caller finished its warm-up. Returns the
    latencies, the wall time and the number of errors."""
    latencies: list[float] = []
    errors = 0
    warmed = asyncio.Barrier(callers + 1)
    go = asyncio.Event()

    async def one(i: int) -> None:
        nonlocal errors
        for k in range(warmup):
            await caller.infer(frames[(i + k) % len(frames)][None])
        await warmed.wait()
        await go.wait()
        for k in range(requests):
            frame = frames[(i * 7 + k) % len(frames)][None]
            t0 = time.perf_counter()
            try:
                await caller.infer(frame)
            except Exception:
                errors += 1
                continue
            latencies.append(1000 * (time.perf_counter() - t0))

    tasks = [asyncio.create_task(one(i)) for i in range(callers)]
    await warmed.wait()
    begin()
    t0 = time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    return latencies, time.perf_counter() - t0, errors


def measure_point(server: ModelServer, protocol: str, frames: npt.NDArray[np.float32], callers: int,
                  requests_per_caller: int, warmup: int) -> Point:
    snap: dict[str, Any] = {}
    window = Window(descendants_cpu_s)

    def begin() -> None:  # every caller warmed up and waiting: nothing in flight
        snap["stats"] = server.stats()
        snap["server_cpu"] = server.proc.cpu_s()
        snap["own_cpu"] = time.process_time()
        window.__enter__()

    async def main() -> tuple[list[float], float, int]:
        caller = Caller(server, protocol)
        try:
            for _ in range(2):  # connection up, model loaded
                await caller.infer(frames[:1])
            result = await _drive(caller, frames, callers, requests_per_caller, warmup, begin)
            window.__exit__(None, None, None)
            snap["own_cpu"] = time.process_time() - snap["own_cpu"]
            snap["server_cpu"] = server.proc.cpu_s() - snap["server_cpu"]
            after = server.stats()
            snap["stats"] = {k: after[k] - snap["stats"][k] for k in after}
            return result
        finally:
            await caller.close()

    latencies, wall, errors = asyncio.run(main())
    return Point(server.batching, callers, len(latencies), wall, latencies, snap["server_cpu"], snap["own_cpu"],
                 snap["stats"], window.result, errors)


# -- (2) the dashcam clip through a deployment -----------------------------------------------------------


@dataclass
class Deployment:
    home: Path
    api: Proc
    worker: Proc
    client: Client
    key: str = ""
    jobs: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(cls, home: Path) -> Deployment:
        port = free_port()
        settings = {"port": str(port), "log_level": "warning"}
        api = start("api", home, "api", **settings)
        worker = start("worker", home, "worker", **settings)
        client = Client(f"http://127.0.0.1:{port}", timeout_s=30)
        try:
            client.wait_ready(READY_TIMEOUT_S)
        except Exception as exc:
            raise RuntimeError(f"the API did not come up: {exc}\n{api.tail()}") from exc
        dep = cls(home, api, worker, client)
        dep.key = client.upload(DASHCAM)["key"]
        return dep

    def run_job(self, endpoint_url: str | None, server: ModelServer | None) -> dict[str, Any]:
        """One detect job on the dashcam clip: in-process (no registry rows) or with one endpoint registered
        at `endpoint_url`, removed again afterwards."""
        endpoint = None
        if endpoint_url is not None:
            endpoint = self.client.register_model_endpoint(MODEL_NAME, 1, endpoint_url, weight=1.0)
        try:
            before = server.stats() if server is not None else None
            worker0, server0, api0 = self.worker.cpu_s(), server.proc.cpu_s() if server else 0.0, self.api.cpu_s()
            with Window(descendants_cpu_s) as win:
                sent = time.time()
                job = self.client.submit({"pipeline": "detect", "input": {"key": self.key}, "params": {}})
                while True:
                    record = self.client.job(job["id"])
                    if record["status"] in {"succeeded", "failed", "cancelled", "expired"}:
                        break
                    time.sleep(0.05)
                seen = time.time()
                time.sleep(0.3)  # the media child reaped into its parent's counters
            worker1, server1, api1 = self.worker.cpu_s(), server.proc.cpu_s() if server else 0.0, self.api.cpu_s()
            after = server.stats() if server is not None else None
        finally:
            if endpoint is not None:
                self.client.remove_model_endpoint(endpoint["id"])
        if record["status"] != "succeeded":
            raise RuntimeError(f"job {record['status']}: {record}\n{self.worker.tail()}")
        out = self.client.download(job["id"], "detections", self.home.parent / "downloads" / job["id"])
        detections = json.loads(out.read_text())
        frames = len(detections["frames"])
        expected_endpoint = endpoint_url or "local"
        if detections.get("model_endpoint") != expected_endpoint:
            raise RuntimeError(f"the job ran on {detections.get('model_endpoint')}, not {expected_endpoint}")
        wall = epoch(record["finished_at"]) - epoch(record["created_at"])
        result: dict[str, Any] = {
            "mode": "local" if endpoint_url is None else endpoint_url.split(":", 1)[0],
            "endpoint": expected_endpoint, "frames": frames, "wall_s": wall, "fps": frames / wall,
            "client_wall_s": seen - sent, "worker_cpu_s": worker1 - worker0, "server_cpu_s": server1 - server0,
            "api_cpu_s": api1 - api0, "boxes": sum(len(f["detections"]) for f in detections["frames"]),
            "window": win.result,
        }
        if before is not None and after is not None:
            delta = {k: after[k] - before[k] for k in after}
            result["server_stats"] = delta
            result["server_requests_per_execution"] = delta["requests"] / max(1, delta["executions"])
            result["server_rows_per_execution"] = delta["rows"] / max(1, delta["executions"])
        self.jobs.append(result)
        return result

    def stop(self) -> None:
        self.client.close()
        for proc in (self.worker, self.api):
            proc.stop()
