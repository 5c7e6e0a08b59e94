"""Benchmark instrumentation of real framequeue processes, without changing framequeue.

bench/run.py starts `framequeue up` with this folder on PYTHONPATH and FQBENCH_TRACE=<file>. Python
imports `sitecustomize` at start-up in every process of the tree (API, workers, their fork servers), and
this installs an import hook: when a media child imports framequeue.pipelines.detect, DetectPipeline.run
is wrapped to append one JSON line per run to the trace file: wall-clock time at the start of run(),
the RunResult stats (first_frame_s, stage times, wall_s) and the media child's own CPU time. Nothing
else changes; without FQBENCH_TRACE this module does nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import sys
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_TARGET = "framequeue.pipelines.detect"


def _record(path: str, entry: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode())  # one write: lines of concurrent jobs never mix
    finally:
        os.close(fd)


def _patch(module: ModuleType, path: str) -> None:
    cls = module.DetectPipeline
    original = cls.run

    def run(self: Any, ctx: Any) -> Any:
        start_epoch = time.time()
        entry: dict[str, Any] = {"pid": os.getpid(), "ppid": os.getppid(), "input": str(ctx.input_path),
                                 "threads": ctx.threads, "run_start_epoch": start_epoch}
        try:
            result = original(self, ctx)
        except BaseException as exc:
            entry.update(error=f"{type(exc).__name__}: {exc}", run_end_epoch=time.time())
            _record(path, entry)
            raise
        entry.update(run_end_epoch=time.time(), frames=result.frames_total, stats=result.stats,
                     child_cpu_s=time.process_time())
        _record(path, entry)
        return result

    cls.run = run


class _Hook(importlib.abc.MetaPathFinder):
    def __init__(self, path: str) -> None:
        self.path = path

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        loader, trace_path = spec.loader, self.path

        class _Loader(importlib.machinery.SourceFileLoader):
            def exec_module(self, module: ModuleType) -> None:
                loader.exec_module(module)
                _patch(module, trace_path)

        spec.loader = _Loader(loader.name, loader.path)
        return spec


_trace = os.environ.get("FQBENCH_TRACE")
if _trace:
    sys.meta_path.insert(0, _Hook(_trace))
