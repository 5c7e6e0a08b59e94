"""OIP v2 HTTP transport in process: JSON and binary tensors, versions, statistics, error statuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from framequeue.inference.dataplane import InferenceService
from framequeue.inference.http import HEADER_LENGTH, create_app
from framequeue.inference.manager import ModelManager
from framequeue.inference.runner import OnnxRunner
from framequeue.models.repository import ModelRepository
from tests.unit.inference_models import write_version
from tests.unit.test_batcher import run_async

pytest.importorskip("onnx", reason="the tiny test models are built with the onnx package")


def make_client(root: Path, budget_bytes: int = 10**9) -> httpx.AsyncClient:
    service = InferenceService(ModelRepository(root), ModelManager(lambda v: OnnxRunner(v), budget_bytes))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://fq")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_version(tmp_path, "add", 1, constant=1.0, version_policy="all")
    write_version(tmp_path, "add", 2, constant=2.0, version_policy="all")
    return tmp_path


X = np.arange(8, dtype=np.float32).reshape(2, 4)


@run_async
async def test_json_infer_on_the_newest_and_a_named_version(root: Path) -> None:
    async with make_client(root) as http:
        body = {"id": "r1", "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4], "data": X.ravel().tolist()}]}
        answer = (await http.post("/v2/models/add/infer", json=body)).json()
        assert answer["model_version"] == "2" and answer["id"] == "r1"
        y = (X + 2).ravel().tolist()
        assert answer["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [2, 4], "data": y}]
        answer = (await http.post("/v2/models/add/versions/1/infer", json=body)).json()
        assert answer["outputs"][0]["data"] == (X + 1).ravel().tolist()
        stats = (await http.get("/v2/models/add/versions/1/stats")).json()["model_stats"][0]
        assert stats["inference_count"] == 2 and stats["execution_count"] == 1


@run_async
async def test_binary_tensors_in_and_out(root: Path) -> None:
    head = json.dumps(
        {
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4], "parameters": {"binary_data_size": 32}}],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    async with make_client(root) as http:
        response = await http.post(
            "/v2/models/add/infer",
            content=head + X.tobytes(),
            headers={HEADER_LENGTH: str(len(head)), "Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 200, response.text
        n = int(response.headers[HEADER_LENGTH])
        meta: dict[str, Any] = json.loads(response.content[:n])
        assert meta["outputs"][0]["parameters"] == {"binary_data_size": 32}
        np.testing.assert_array_equal(np.frombuffer(response.content[n:], np.float32).reshape(2, 4), X + 2)


@run_async
async def test_metadata_health_and_index(root: Path) -> None:
    async with make_client(root) as http:
        assert (await http.get("/v2/health/live")).status_code == 200
        assert (await http.get("/v2/health/ready")).status_code == 200
        assert (await http.get("/v2")).json()["extensions"] == ["binary_tensor_data", "statistics"]
        meta = (await http.get("/v2/models/add")).json()
        assert meta["versions"] == ["1", "2"]
        assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
        assert (await http.get("/v2/models/add/versions/1/ready")).status_code == 200
        assert [m["version"] for m in (await http.post("/v2/repository/index")).json()] == ["1", "2"]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v2/models/nope/infer", {"inputs": []}, 404, "not found"),
        ("/v2/models/add/versions/7/infer", {"inputs": []}, 404, "not served"),
        ("/v2/models/add/infer", {"inputs": [{"name": "z", "datatype": "FP32", "shape": [1, 4], "data": [0] * 4}]},
         400, "expected inputs"),
        ("/v2/models/add/infer", {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 5], "data": [0] * 5}]},
         400, "shape"),
        ("/v2/models/add/infer", {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [0] * 3}]},
         400, "3 values"),
    ],
)
@run_async
async def test_errors_are_json_with_oip_statuses(root: Path, path: str, body: Any, status: int, message: str) -> None:
    async with make_client(root) as http:
        response = await http.post(path, json=body)
        assert response.status_code == status
        assert message in response.json()["error"]


@run_async
async def test_a_model_over_the_memory_budget_is_503(root: Path) -> None:
    async with make_client(root, budget_bytes=10) as http:
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [0] * 4}]}
        response = await http.post("/v2/models/add/infer", json=body)
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert "memory budget" in response.json()["error"]
