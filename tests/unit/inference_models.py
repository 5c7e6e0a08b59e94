"""Tiny ONNX models for the serve-models tests, written straight into a model repository folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from framequeue.models.repository import ModelRepository
from framequeue.models.serving import ServingConfig
from framequeue.models.version import CONFIG_FILE, MODEL_FILE, ModelVersion

#: features per row of the tiny model
WIDTH = 4


def add_one_onnx(constant: float = 1.0) -> bytes:
    """y = x + constant over x: [batch, WIDTH] FP32, batch dynamic: each output row identifies its input."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "c"], ["y"])],
        "add_constant",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", WIDTH])],
        [helper.make_tensor("c", TensorProto.FLOAT, [WIDTH], [constant] * WIDTH)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def write_version(root: Path, name: str, version: int, constant: float = 1.0, **serving: Any) -> ModelVersion:
    """Store the tiny model as `name` version `version` with the given serving keys in config.yaml."""
    folder = root / name / str(version)
    folder.mkdir(parents=True)
    (folder / MODEL_FILE).write_bytes(add_one_onnx(constant))
    config = {
        "format": "yolox",
        "input_name": "x",
        "input_size_hw": [1, WIDTH],
        "batch_native": True,
        "classes": ["a"],
        "sha256": "0" * 64,
        "source_sha256": "0" * 64,
        "created_at": "2026-01-01T00:00:00+00:00",
        **serving,
    }
    (folder / CONFIG_FILE).write_text(yaml.safe_dump(config), encoding="utf-8")
    return ModelRepository(root).get(name, version)


def fake_version(name: str, version: int = 1, memory_bytes: int = 100, **serving: Any) -> ModelVersion:
    """A ModelVersion for manager tests that never touch files."""
    return ModelVersion(
        name=name,
        version=version,
        path=Path("/nonexistent") / name / str(version),
        format="yolox",
        input_name="x",
        input_size_hw=(1, WIDTH),
        classes=("a",),
        batch_native=True,
        sha256="0" * 64,
        source_sha256="0" * 64,
        created_at="2026-01-01T00:00:00+00:00",
        serving=ServingConfig(memory_bytes=memory_bytes, **serving),
    )
