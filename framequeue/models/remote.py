"""A model version run by a remote Open Inference Protocol v2 server (`framequeue serve-models`, Triton,
KServe), behind the same `submit`/`infer` as the in-process OnnxModel, and the health checks routing uses.

HTTP (`http(s)://host:port[/prefix]`) speaks KServe v2 REST with Triton's binary tensor extension over
httpx, from a small thread pool; gRPC (`grpc://host:port`) uses tritonclient's `async_infer` (imported
only when a grpc:// endpoint is used: `pip install 'framequeue[serve]'`). Up to `max_in_flight` batches
are outstanding at once, so the network round trip hides behind the pipeline's decode and encode; the
caller collects the futures in frame order.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import numpy as np
import numpy.typing as npt

from framequeue.endpoints.routing import LOCAL, ModelEndpoint
from framequeue.errors import FrameQueueError, ServiceUnavailable
from framequeue.models.version import ModelVersion

HEADER_LENGTH: Final = "Inference-Header-Content-Length"
#: batches a remote model keeps outstanding by default
MAX_IN_FLIGHT: Final = 4
#: seconds one inference request may take, queueing on the server included
REQUEST_TIMEOUT_S: Final = 60.0
#: a health check answers within this, or the endpoint counts as down
HEALTH_TIMEOUT_S: Final = 1.0
#: how long a health verdict is reused
HEALTH_TTL_S: Final = 3.0

Outputs = list[npt.NDArray[np.float32]]


class RemoteModel:
    """One stored model version served at `url`; `submit` returns at once with a future of the raw outputs
    (each with leading dim N), `infer` waits for them."""

    def __init__(self, version: ModelVersion, url: str, max_in_flight: int = MAX_IN_FLIGHT,
                 timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.version = version
        self.url = url.rstrip("/")
        self.max_in_flight = max(1, max_in_flight)
        self._timeout_s = timeout_s
        self._grpc: Any = None
        self._http: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        if self.url.startswith("grpc://"):
            try:
                import tritonclient.grpc as triton_grpc
            except ImportError as exc:
                raise FrameQueueError(
                    "a grpc:// model endpoint needs tritonclient: pip install 'framequeue[serve]'"
                ) from exc
            self._triton = triton_grpc
            self._grpc = triton_grpc.InferenceServerClient(urlsplit(self.url).netloc)
        else:
            self._http = httpx.Client(base_url=self.url, timeout=timeout_s)
            self._pool = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="remote-infer")

    def submit(self, batch: npt.NDArray[np.float32]) -> Future[Outputs]:
        """Send an NCHW float32 batch (the caller must not change it until the future is done)."""
        if batch.ndim != 4 or len(batch) == 0:
            raise ValueError(f"infer takes a non-empty NCHW batch, got shape {batch.shape}")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self._pool is not None:
            return self._pool.submit(self._infer_http, batch)
        return self._submit_grpc(batch)

    def infer(self, batch: npt.NDArray[np.float32]) -> Outputs:
        return self.submit(batch).result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._http is not None:
            self._http.close()
        if self._grpc is not None:
            self._grpc.close()

    def _check(self, outputs: Outputs, n: int) -> Outputs:
        if not outputs:
            raise ServiceUnavailable(f"{self.url}: {self.version.ref} answered no outputs")
        for out in outputs:
            if out.shape[0] != n:  # the batcher's invariant, checked across the network too
                raise RuntimeError(f"{self.url}: {self.version.ref} answered leading dim {out.shape[0]} for {n}")
        return outputs

    def _infer_http(self, batch: npt.NDArray[np.float32]) -> Outputs:
        assert self._http is not None
        raw = batch.tobytes()
        head = json.dumps({
            "inputs": [{"name": self.version.input_name, "shape": list(batch.shape), "datatype": "FP32",
                        "parameters": {"binary_data_size": len(raw)}}],
            "parameters": {"binary_data_output": True},
        }, separators=(",", ":")).encode()
        path = f"/v2/models/{self.version.name}/versions/{self.version.version}/infer"
        try:
            resp = self._http.post(path, content=head + raw, headers={
                HEADER_LENGTH: str(len(head)), "Content-Type": "application/octet-stream"})
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"model endpoint {self.url}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code != 200:
            error = ServiceUnavailable if resp.status_code in (502, 503, 504) else FrameQueueError
            raise error(f"model endpoint {self.url}: HTTP {resp.status_code}: {resp.text[:200]}")
        body = bytearray(resp.content)  # writable arrays: decoders may work in place
        n_head = int(resp.headers.get(HEADER_LENGTH, len(body)))
        answer = json.loads(bytes(body[:n_head]))
        offset, outputs = n_head, []
        for tensor in answer["outputs"]:
            shape = tuple(tensor["shape"])
            size = (tensor.get("parameters") or {}).get("binary_data_size")
            if size is None:
                outputs.append(np.asarray(tensor["data"], np.float32).reshape(shape))
                continue
            outputs.append(np.frombuffer(body, np.float32, int(np.prod(shape)), offset).reshape(shape))
            offset += size
        return self._check(outputs, len(batch))

    def _submit_grpc(self, batch: npt.NDArray[np.float32]) -> Future[Outputs]:
        future: Future[Outputs] = Future()
        tensor = self._triton.InferInput(self.version.input_name, list(batch.shape), "FP32")
        tensor.set_data_from_numpy(batch)

        def done(result: Any, error: Any) -> None:
            if error is not None:
                future.set_exception(ServiceUnavailable(f"model endpoint {self.url}: {error}"))
                return
            try:
                names = [o.name for o in result.get_response().outputs]
                future.set_result(self._check([result.as_numpy(name) for name in names], len(batch)))
            except BaseException as exc:
                future.set_exception(exc)

        self._grpc.async_infer(self.version.name, [tensor], done, model_version=str(self.version.version),
                               client_timeout=self._timeout_s)
        return future


def is_ready(url: str, timeout_s: float = HEALTH_TIMEOUT_S) -> bool:
    """Whether the OIP v2 server at `url` says it is ready (`/v2/health/ready`, gRPC ServerReady)."""
    if url == LOCAL:
        return True
    try:
        if url.startswith("grpc://"):
            import tritonclient.grpc as triton_grpc

            client = triton_grpc.InferenceServerClient(urlsplit(url).netloc)
            try:
                return bool(client.is_server_ready(client_timeout=timeout_s))
            finally:
                client.close()
        return httpx.get(url.rstrip("/") + "/v2/health/ready", timeout=timeout_s).status_code == 200
    except Exception:  # refused, timed out, reset, no client library: not ready
        return False


class HealthChecks:
    """`checks(endpoint) -> bool` for routing: `local` is always healthy; a URL's readiness is asked at
    most once per `ttl_s` (a dead endpoint costs one short timeout per ttl, not one per job)."""

    def __init__(self, ttl_s: float = HEALTH_TTL_S, probe: Callable[[str], bool] = is_ready,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s, self._probe, self._clock = ttl_s, probe, clock
        self._seen: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def __call__(self, endpoint: ModelEndpoint) -> bool:
        if endpoint.local:
            return True
        now = self._clock()
        with self._lock:
            seen = self._seen.get(endpoint.url)
        if seen is not None and now - seen[0] < self._ttl_s:
            return seen[1]
        ok = self._probe(endpoint.url)
        with self._lock:
            self._seen[endpoint.url] = (now, ok)
        return ok
