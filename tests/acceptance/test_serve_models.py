"""`serve-models` as a real process, called by NVIDIA's own tritonclient over HTTP and gRPC, unchanged.

The repository is built with `framequeue models add` (YOLOX-nano from ../shared); answers are compared
with ONNX Runtime run in this process on the same stored model.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.conftest import require_shared

tritonclient = pytest.importorskip("tritonclient", reason="install the dev extra: tritonclient[http,grpc]")
import tritonclient.grpc as triton_grpc  # noqa: E402
import tritonclient.http as triton_http  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

MODEL = "yolox_nano"
#: the repository's config is edited as an operator would: a longer window makes merging certain
QUEUE_DELAY_US = 20_000
CALLERS = 8
ATOL = 1e-3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    http_url: str
    grpc_url: str
    model_path: Path
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    model_dir = require_shared("models", "yolox_nano")
    home = tmp_path_factory.mktemp("serve")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FQ_")}
    env.update({"FQ_HOME": str(home), "PYTHONUNBUFFERED": "1"})
    subprocess.run(
        [sys.executable, "-m", "framequeue", "models", "add", MODEL, str(model_dir / "yolox_nano.onnx"),
         "--format", "yolox", "--classes", str(model_dir / "coco_classes.txt")],
        env=env, check=True, capture_output=True, timeout=60,
    )
    config_path = home / "models" / MODEL / "1" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["max_queue_delay_us"] = QUEUE_DELAY_US
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    http_port, grpc_port = free_port(), free_port()
    log = (home / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "framequeue", "serve-models", "--http-port", str(http_port),
         "--grpc-port", str(grpc_port), "--memory-budget-mb", "256"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    srv = Server(f"127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", config_path.parent / "model.onnx", process)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (home / "serve.log").read_text()
            try:
                if triton_http.InferenceServerClient(srv.http_url).is_server_ready():
                    break
            except Exception:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)
        yield srv
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def frames() -> np.ndarray[Any, Any]:
    """CALLERS different real frames, letterboxed to 416x416 as YOLOX takes them: N x 3 x 416 x 416 FP32."""
    import cv2

    from framequeue.media.letterbox import letterbox

    stills = sorted(require_shared("media", "stills").glob("*.jpg"))
    images = [cv2.imread(str(p)) for p in stills]
    images += [img[:, ::-1].copy() for img in images]  # mirrored: more distinct frames
    return np.stack([letterbox(img, (416, 416))[0] for img in images[:CALLERS]])


@pytest.fixture(scope="module")
def expected(server: Server, frames: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """In-process ONNX Runtime on the stored model, one frame at a time."""
    from framequeue.models.onnx import create_session

    session = create_session(server.model_path, threads=1)
    return np.concatenate([session.run(None, {"images": frames[i : i + 1]})[0] for i in range(len(frames))])


def client(kind: str, server: Server) -> Any:
    if kind == "http":
        return triton_http.InferenceServerClient(server.http_url, network_timeout=60.0)
    return triton_grpc.InferenceServerClient(server.grpc_url)


def infer(kind: str, c: Any, batch: np.ndarray[Any, Any], binary: bool = True) -> np.ndarray[Any, Any]:
    module = triton_http if kind == "http" else triton_grpc
    tensor = module.InferInput("images", list(batch.shape), "FP32")
    if kind == "http":
        tensor.set_data_from_numpy(batch, binary_data=binary)
        outputs = [triton_http.InferRequestedOutput("output", binary_data=binary)]
    else:
        tensor.set_data_from_numpy(batch)
        outputs = [triton_grpc.InferRequestedOutput("output")]
    result = c.infer(MODEL, [tensor], outputs=outputs)
    out: np.ndarray[Any, Any] = result.as_numpy("output")
    return out


def executions(server: Server) -> tuple[int, int]:
    """(requests, executions) so far, from Triton's statistics extension over HTTP."""
    stats = client("http", server).get_inference_statistics(MODEL)["model_stats"][0]
    return stats["inference_stats"]["success"]["count"], stats["execution_count"]


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_health_readiness_and_metadata(server: Server, kind: str) -> None:
    c = client(kind, server)
    assert c.is_server_live() and c.is_server_ready()
    assert c.is_model_ready(MODEL) and c.is_model_ready(MODEL, "1")
    assert not c.is_model_ready("no_such_model")
    meta = c.get_model_metadata(MODEL)
    if kind == "grpc":
        meta = {
            "versions": list(meta.versions),
            "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in meta.inputs],
            "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in meta.outputs],
        }
    assert meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "images", "datatype": "FP32", "shape": [-1, 3, 416, 416]}]
    assert meta["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 3549, 85]}]


@pytest.mark.parametrize(("kind", "binary"), [("http", True), ("http", False), ("grpc", True)])
def test_infer_equals_in_process_onnx_runtime(
    server: Server, frames: np.ndarray[Any, Any], expected: np.ndarray[Any, Any], kind: str, binary: bool
) -> None:
    out = infer(kind, client(kind, server), frames[:1], binary)
    assert out.shape == (1, 3549, 85)
    np.testing.assert_allclose(out, expected[:1], atol=ATOL)
    # a request of two rows gets both, in order
    np.testing.assert_allclose(infer(kind, client(kind, server), frames[2:4]), expected[2:4], atol=ATOL)


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_concurrent_callers_are_batched_and_each_gets_its_own_rows(
    server: Server, frames: np.ndarray[Any, Any], expected: np.ndarray[Any, Any], kind: str
) -> None:
    clients = [client(kind, server) for _ in range(CALLERS)]
    results: list[np.ndarray[Any, Any] | BaseException | None] = [None] * CALLERS
    start = threading.Barrier(CALLERS)

    def call(i: int) -> None:
        try:
            start.wait(10)
            results[i] = infer(kind, clients[i], frames[i : i + 1])
        except BaseException as exc:
            results[i] = exc

    requests_before, executions_before = executions(server)
    threads = [threading.Thread(target=call, args=(i,)) for i in range(CALLERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i, result in enumerate(results):
        assert isinstance(result, np.ndarray), result
        # exactly its own frame's answer: every other frame's differs by far more than the tolerance
        np.testing.assert_allclose(result, expected[i : i + 1], atol=ATOL)
    requests_after, executions_after = executions(server)
    assert requests_after - requests_before == CALLERS
    assert executions_after - executions_before < CALLERS


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_an_unknown_model_raises_not_found(server: Server, frames: np.ndarray[Any, Any], kind: str) -> None:
    c = client(kind, server)
    module = triton_http if kind == "http" else triton_grpc
    tensor = module.InferInput("images", [1, 3, 416, 416], "FP32")
    tensor.set_data_from_numpy(frames[:1])
    with pytest.raises(InferenceServerException, match="not found"):
        c.infer("no_such_model", [tensor])
    with pytest.raises(InferenceServerException, match="not found"):
        c.get_model_metadata("no_such_model")


def test_metrics_show_the_batch_size_and_queue_time_distributions(
    server: Server, frames: np.ndarray[Any, Any]
) -> None:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    infer("http", client("http", server), frames[:1])
    requests, execs = executions(server)
    body = httpx.get(f"http://{server.http_url}/metrics", timeout=10).text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(body) for s in family.samples}
    ref = next(labels for name, labels in samples if name == "framequeue_inference_requests_total")
    assert samples[("framequeue_inference_requests_total", ref)] == requests
    assert samples[("framequeue_inference_executions_total", ref)] == execs
    inf = tuple(sorted({**dict(ref), "le": "+Inf"}.items()))
    assert samples[("framequeue_inference_batch_size_rows_bucket", inf)] == execs
    assert samples[("framequeue_inference_queue_seconds_bucket", inf)] == requests
    assert samples[("framequeue_inference_queue_seconds_count", ref)] == requests
