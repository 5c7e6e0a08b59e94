"""Pipelines by name: the built-in ones, then those installed under the `framequeue.pipelines` entry point.

Nothing is imported or registered at import time: a pipeline's module is loaded when it is asked for,
so the API process does not pay for OpenCV, PyAV and ONNX Runtime until it validates a job.
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points
from typing import Final, cast

from framequeue.errors import UnknownPipeline
from framequeue.pipelines.base import Pipeline

#: entry point group where other packages publish pipelines (a class or an instance)
ENTRY_POINT_GROUP: Final = "framequeue.pipelines"
#: built-in pipeline name -> "module:class"
_BUILTIN: Final[dict[str, str]] = {
    "detect": "framequeue.pipelines.detect:DetectPipeline",
    "driver": "framequeue.pipelines.driver.pipeline:DriverPipeline",
    "noop": "framequeue.pipelines.noop:NoopPipeline",
    "road": "framequeue.pipelines.road.pipeline:RoadPipeline",
}


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_pipelines() -> list[str]:
    """Names of the built-in and installed pipelines (installed ones are listed, not imported)."""
    return sorted({*_BUILTIN, *_entry_points()})


def get_pipeline(name: str) -> Pipeline:
    """A pipeline instance; UnknownPipeline naming the available ones otherwise."""
    if name in _BUILTIN:
        module_name, attr = _BUILTIN[name].split(":")
        loaded: object = getattr(importlib.import_module(module_name), attr)
    else:
        ep = _entry_points().get(name)
        if ep is None:
            raise UnknownPipeline(
                f"no pipeline named {name!r}; available: {', '.join(available_pipelines())}"
            )
        loaded = ep.load()
    pipeline = loaded() if isinstance(loaded, type) else loaded
    if getattr(pipeline, "name", None) != name or not callable(getattr(pipeline, "run", None)):
        raise UnknownPipeline(
            f"pipeline {name!r} does not implement the Pipeline protocol (name, validate, run)"
        )
    return cast(Pipeline, pipeline)
