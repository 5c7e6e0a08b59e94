"""Pipeline lookup: the built-in detect, entry-point pipelines loaded lazily, a clear error otherwise."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from importlib.metadata import EntryPoint
from typing import Any, ClassVar

import pytest

from framequeue.errors import UnknownPipeline
from framequeue.models.repository import ModelRepository
from framequeue.pipelines import registry
from framequeue.pipelines.base import RunContext, RunResult


class EchoPipeline:
    name: ClassVar[str] = "echo"
    version: ClassVar[str] = "1"

    def validate(self, params: Mapping[str, Any], models: ModelRepository) -> dict[str, Any]:
        return dict(params)

    def run(self, ctx: RunContext) -> RunResult:
        return RunResult(outputs={}, frames_total=0, frames_inferred=0)


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, *eps: EntryPoint) -> None:
    def entry_points(group: str) -> list[EntryPoint]:
        assert group == registry.ENTRY_POINT_GROUP
        return list(eps)

    monkeypatch.setattr(registry, "entry_points", entry_points)


def test_builtin_detect() -> None:
    pipeline = registry.get_pipeline("detect")
    assert (pipeline.name, pipeline.version) == ("detect", "1")
    assert "detect" in registry.available_pipelines()


def test_unknown_pipeline_lists_the_available_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch)
    with pytest.raises(UnknownPipeline, match="no pipeline named 'lanes'; available: detect"):
        registry.get_pipeline("lanes")


def test_entry_point_pipelines(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = EntryPoint("echo", f"{__name__}:EchoPipeline", registry.ENTRY_POINT_GROUP)
    broken = EntryPoint("broken", f"{__name__}:EchoPipeline", registry.ENTRY_POINT_GROUP)
    fake_entry_points(monkeypatch, ep, broken)
    assert registry.available_pipelines() == ["broken", "detect", "driver", "echo", "noop", "road"]
    assert isinstance(registry.get_pipeline("echo"), EchoPipeline)
    # an entry point whose object says another name is not trusted
    with pytest.raises(UnknownPipeline, match="does not implement"):
        registry.get_pipeline("broken")


def test_nothing_heavy_is_imported_with_the_registry() -> None:
    code = (
        "import sys, framequeue.pipelines, framequeue.pipelines.registry; "
        "heavy = ('cv2', 'av', 'onnxruntime', 'framequeue.pipelines.detect'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
