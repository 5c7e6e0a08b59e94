"""Serving keys of a model's config.yaml: defaults for old files, validation, version policies."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from framequeue.errors import InvalidParams, UnknownModel
from framequeue.models.repository import ModelRepository
from framequeue.models.serving import MEMORY_FACTOR, ServingConfig, VersionPolicy
from framequeue.models.version import CONFIG_FILE
from tests.unit.inference_models import write_version

pytest.importorskip("onnx", reason="the tiny test models are built with the onnx package")


def test_a_config_without_serving_keys_gets_the_defaults(tmp_path: Path) -> None:
    version = write_version(tmp_path, "add", 1)
    assert version.serving == ServingConfig()
    assert (version.serving.max_batch_size, version.serving.max_queue_delay_us, version.serving.instances) == (
        8,
        2000,
        1,
    )
    assert version.memory_bytes == MEMORY_FACTOR * version.model_path.stat().st_size


def test_serving_keys_are_read(tmp_path: Path) -> None:
    version = write_version(
        tmp_path, "add", 1, max_batch_size=16, max_queue_delay_us=500, instances=2, memory_bytes=12345,
        version_policy={"specific": [1]},
    )
    assert version.serving == ServingConfig(16, 500, 2, 12345, VersionPolicy("specific", versions=(1,)))
    assert version.memory_bytes == 12345


@pytest.mark.parametrize(
    "bad", [{"max_batch_size": 0}, {"instances": "two"}, {"memory_bytes": -1}, {"version_policy": "newest"}]
)
def test_bad_serving_keys_name_the_file_and_the_key(tmp_path: Path, bad: dict[str, object]) -> None:
    with pytest.raises(InvalidParams, match=f"{CONFIG_FILE}: {next(iter(bad))}"):
        write_version(tmp_path, "add", 1, **bad)


@pytest.mark.parametrize(
    ("policy", "served"),
    [(None, [3]), ("latest", [3]), ({"latest": 2}, [2, 3]), ("all", [1, 2, 3]), ({"specific": [1, 3]}, [1, 3])],
)
def test_version_policy_of_the_newest_version_decides(
    tmp_path: Path, policy: object, served: list[int]
) -> None:
    for v in (1, 2, 3):
        write_version(tmp_path, "add", v, **({"version_policy": policy} if v == 3 and policy else {}))
    repo = ModelRepository(tmp_path)
    assert repo.served_versions("add") == served
    assert repo.get_served("add").version == served[-1]
    for v in {1, 2, 3} - set(served):
        with pytest.raises(UnknownModel, match=f"version {v} is not served"):
            repo.get_served("add", v)
    with pytest.raises(UnknownModel, match="no model named 'nope'"):
        repo.get_served("nope")


def test_add_writes_the_serving_defaults_with_the_estimated_memory(tmp_path: Path) -> None:
    from tests.unit.synthetic import write_tiny_yolox

    model, classes = write_tiny_yolox(tmp_path / "src")
    repo = ModelRepository(tmp_path / "models")
    version = repo.add("tiny", model, "yolox", classes, serving=ServingConfig(max_batch_size=4))
    config = yaml.safe_load((version.path / CONFIG_FILE).read_text())
    assert config["max_batch_size"] == 4 and config["max_queue_delay_us"] == 2000 and config["instances"] == 1
    assert config["version_policy"] == "latest"
    assert config["memory_bytes"] == MEMORY_FACTOR * version.model_path.stat().st_size == version.memory_bytes
