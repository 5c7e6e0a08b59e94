"""Model repository: versioning, config, rejections; ONNX wrapper: batched runs equal single runs."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from framequeue.errors import InvalidParams, UnknownModel
from framequeue.models.onnx import OnnxModel
from framequeue.models.repository import ModelRepository
from tests.unit.synthetic import TINY_CLASSES, TINY_SIZE, write_tiny_yolox

pytest.importorskip("onnx", reason="the tiny test model is built with the onnx package")


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    return write_tiny_yolox(tmp_path / "src")


@pytest.fixture
def repo(tmp_path: Path) -> ModelRepository:
    return ModelRepository(tmp_path / "models")


def test_add_get_list_and_versions(repo: ModelRepository, tiny: tuple[Path, Path]) -> None:
    model, classes = tiny
    first = repo.add("tiny", model, "yolox", classes)
    second = repo.add("tiny", model, "yolox", classes)
    other = repo.add("other-1", model, "yolox", classes)

    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert first.input_size_hw == (TINY_SIZE, TINY_SIZE)
    assert first.classes == TINY_CLASSES
    assert first.input_name == "images"
    assert first.path == repo.root / "tiny" / "1"
    assert repo.get("tiny").version == 2
    assert repo.get("tiny", 1) == first
    assert [(m.name, m.version) for m in repo.list()] == [("other-1", 1), ("tiny", 1), ("tiny", 2)]

    config = yaml.safe_load((first.path / "config.yaml").read_text())
    assert config["format"] == "yolox"
    assert config["input_size_hw"] == [TINY_SIZE, TINY_SIZE]
    assert config["classes"] == list(TINY_CLASSES)
    assert config["sha256"] == hashlib.sha256(first.model_path.read_bytes()).hexdigest()
    assert config["source_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert "created_at" in config and isinstance(config["batch_native"], bool)
    # nothing half-written stays behind
    assert not [p for p in (repo.root / "tiny").iterdir() if p.name.startswith(".")]


def test_get_missing(repo: ModelRepository, tiny: tuple[Path, Path]) -> None:
    with pytest.raises(UnknownModel, match="no model named 'nope'"):
        repo.get("nope")
    repo.add("tiny", *tiny[:1], "yolox", tiny[1])
    with pytest.raises(UnknownModel, match="versions: 1"):
        repo.get("tiny", 5)
    with pytest.raises(UnknownModel):
        repo.get("../models")
    assert ModelRepository(repo.root / "absent").list() == []


@pytest.mark.parametrize("name", ["Bad", "has space", "../up", "", "-lead", "x" * 65])
def test_rejects_bad_names(repo: ModelRepository, tiny: tuple[Path, Path], name: str) -> None:
    with pytest.raises(InvalidParams, match=r"^name:"):
        repo.add(name, tiny[0], "yolox", tiny[1])


def test_rejects_unknown_format(repo: ModelRepository, tiny: tuple[Path, Path]) -> None:
    with pytest.raises(InvalidParams, match=r"format: unknown model format 'yolov99'.*yolox"):
        repo.add("tiny", tiny[0], "yolov99", tiny[1])
    assert repo.list() == []


def test_rejects_a_file_that_is_not_onnx(
    repo: ModelRepository, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InvalidParams, match="not an ONNX model"):
        repo.add("tiny", fake, "yolox", tiny[1])
    assert repo.list() == []


def test_rejects_classes_that_do_not_fit_the_model(
    repo: ModelRepository, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    three = tmp_path / "three.txt"
    three.write_text("a\nb\nc\n")
    with pytest.raises(InvalidParams, match=r"^classes: the model predicts 2 classes"):
        repo.add("tiny", tiny[0], "yolox", three)
    dup = tmp_path / "dup.txt"
    dup.write_text("a\na\n")
    with pytest.raises(InvalidParams, match="repeats a"):
        repo.add("tiny", tiny[0], "yolox", dup)


def test_batch_dimension_is_made_dynamic(repo: ModelRepository, tiny: tuple[Path, Path]) -> None:
    version = repo.add("tiny", *tiny[:1], "yolox", tiny[1])
    assert version.batch_native
    batch = np.random.default_rng(1).uniform(0, 255, (5, 3, TINY_SIZE, TINY_SIZE)).astype(np.float32)
    native = OnnxModel.load(version, threads=1).infer(batch)[0]
    looped = OnnxModel.load(dataclasses.replace(version, batch_native=False), threads=1).infer(batch)[0]
    assert native.shape == (5, 21, 5 + len(TINY_CLASSES))
    np.testing.assert_allclose(native, looped, atol=1e-4)


def test_unfixable_batch_falls_back_to_single_runs(
    repo: ModelRepository, tmp_path: Path, tiny: tuple[Path, Path]
) -> None:
    model, classes = write_tiny_yolox(tmp_path / "const", shape_from_constant=True)
    version = repo.add("const", model, "yolox", classes)
    assert not version.batch_native
    # stored unchanged, and infer still takes N frames
    assert version.model_path.read_bytes() == model.read_bytes()
    batch = np.random.default_rng(2).uniform(0, 255, (3, 3, TINY_SIZE, TINY_SIZE)).astype(np.float32)
    out = OnnxModel.load(version, threads=1).infer(batch)[0]
    assert out.shape == (3, 21, 5 + len(TINY_CLASSES))
    single = OnnxModel.load(version, threads=1).infer(batch[2:3])[0]
    np.testing.assert_allclose(out[2:3], single, atol=1e-6)


def test_real_yolox_nano_batches_natively(repo: ModelRepository, yolox_dir: Path) -> None:
    version = repo.add("yolox_nano", yolox_dir / "yolox_nano.onnx", "yolox", yolox_dir / "coco_classes.txt")
    assert (version.input_size_hw, len(version.classes), version.batch_native) == ((416, 416), 80, True)
