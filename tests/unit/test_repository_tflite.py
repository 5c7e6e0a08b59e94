"""A FaceMesh `.tflite` in the model repository: stored with its canonical face, run by LiteRT in-process, and
refused by serve-models; the wrong pairings of file, format and canonical face are refused naming the field."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from framequeue.errors import InvalidParams, InvalidRequest
from framequeue.models.repository import ModelRepository
from framequeue.models.runtimes import load_backend
from framequeue.models.version import CANONICAL_FACE_FILE, CONFIG_FILE, TFLITE_FILE
from tests.conftest import require_shared

pytest.importorskip("ai_edge_litert", reason="`.tflite` models need pip install 'framequeue[tflite]'")


@pytest.fixture
def mesh() -> Path:
    return require_shared("models", "mediapipe", "face_landmark.tflite")


@pytest.fixture
def face() -> Path:
    return require_shared("models", "mediapipe", "canonical_face_model.obj")


@pytest.fixture
def repo(tmp_path: Path) -> ModelRepository:
    return ModelRepository(tmp_path / "models")


def test_facemesh_is_stored_with_its_canonical_face(repo: ModelRepository, mesh: Path, face: Path) -> None:
    version = repo.add("facemesh", mesh, "facemesh", None, canonical_face=face)
    assert (version.name, version.version, version.format) == ("facemesh", 1, "facemesh")
    assert version.model_path == version.path / TFLITE_FILE == repo.root / "facemesh" / "1" / "model.tflite"
    assert version.model_path.read_bytes() == mesh.read_bytes()
    assert (version.path / CANONICAL_FACE_FILE).read_bytes() == face.read_bytes()
    assert not (version.path / "model.onnx").exists()
    assert version.serving.runtime == "litert"
    assert version.input_size_hw == (192, 192)
    assert version.classes == ("face",)
    assert version.batch_native is False
    config = yaml.safe_load((version.path / CONFIG_FILE).read_text())
    assert config["runtime"] == "litert" and config["model_file"] == "model.tflite"
    face_sha256 = hashlib.sha256(face.read_bytes()).hexdigest()
    assert config["canonical_face"] == {"file": CANONICAL_FACE_FILE, "sha256": face_sha256}
    assert config["sha256"] == hashlib.sha256(mesh.read_bytes()).hexdigest()
    assert repo.get("facemesh") == version


def test_facemesh_without_a_canonical_face_is_refused(repo: ModelRepository, mesh: Path) -> None:
    with pytest.raises(InvalidParams, match=r"^canonical_face: .*canonical_face_model\.obj"):
        repo.add("facemesh", mesh, "facemesh", None)
    assert repo.list() == []


def test_a_canonical_face_with_the_wrong_vertex_count_is_refused(
    repo: ModelRepository, mesh: Path, face: Path, tmp_path: Path
) -> None:
    lines = face.read_text().splitlines()
    first_vertex = next(i for i, line in enumerate(lines) if line.startswith("v "))
    short = tmp_path / "short.obj"
    short.write_text("\n".join(lines[:first_vertex] + lines[first_vertex + 1 :]) + "\n")
    with pytest.raises(InvalidParams, match=r"^canonical_face: short\.obj has 467 vertices"):
        repo.add("facemesh", mesh, "facemesh", None, canonical_face=short)
    with pytest.raises(InvalidParams, match=r"^canonical_face: "):
        repo.add("facemesh", mesh, "facemesh", None, canonical_face=tmp_path / "absent.obj")
    assert repo.list() == []


def test_a_tflite_given_a_detection_format_is_refused(repo: ModelRepository, mesh: Path, face: Path) -> None:
    with pytest.raises(InvalidParams, match=r"^format: .*\.tflite"):
        repo.add("mesh", mesh, "yolox", None, canonical_face=face)
    assert repo.list() == []


def test_an_onnx_file_given_facemesh_is_refused(repo: ModelRepository, face: Path) -> None:
    onnx = require_shared("models", "mediapipe", "face_detection_short_range.onnx")
    with pytest.raises(InvalidParams, match=r"^source_path: .*face_detection_short_range\.onnx"):
        repo.add("mesh", onnx, "facemesh", None, canonical_face=face)
    assert repo.list() == []


def test_load_backend_runs_it_in_process(repo: ModelRepository, mesh: Path, face: Path) -> None:
    version = repo.add("facemesh", mesh, "facemesh", None, canonical_face=face)
    backend = load_backend(version, threads=1)
    try:
        outputs = backend.infer(np.zeros((2, 192, 192, 3), np.float32))
        assert outputs and all(out.shape[0] == 2 for out in outputs)
        assert 1404 in {int(np.prod(out.shape[1:])) for out in outputs}  # 468 x (x, y, z)
        for out in outputs:  # the same input gives the same row
            np.testing.assert_array_equal(out[0], out[1])
        submitted = backend.submit(np.zeros((1, 192, 192, 3), np.float32)).result()
        assert [s.shape[0] for s in submitted] == [1] * len(outputs)
    finally:
        backend.close()


def test_serve_models_refuses_a_litert_version(repo: ModelRepository, mesh: Path, face: Path) -> None:
    from framequeue.inference.runner import OnnxRunner

    version = repo.add("facemesh", mesh, "facemesh", None, canonical_face=face)
    with pytest.raises(InvalidRequest, match=r"facemesh:1 is a LiteRT"):
        OnnxRunner(version)
