"""The "noop" pipeline: checks that the input exists and writes a one-line result. It measures what
framequeue itself costs per job (queue, claim, media child, commit), for the dispatch benchmark and for
deployment smoke tests, with no media work in the way. `crash: true` makes the media process die
abruptly, for fault drills (a job that crashes its worker every time)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from framequeue.errors import InvalidParams, JobCancelled
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.base import Progress, RunContext, RunResult

#: the longest a noop job may pretend to work, seconds
MAX_SLEEP_S = 600.0


class NoopPipeline:
    name: ClassVar[str] = "noop"
    version: ClassVar[str] = "1"

    def validate(self, params: Mapping[str, Any], models: ModelRepository) -> dict[str, Any]:
        unknown = sorted(set(params) - {"sleep_s", "crash"})
        if unknown:
            raise InvalidParams(f"{unknown[0]}: unknown parameter; known: sleep_s, crash")
        sleep_s = params.get("sleep_s", 0.0)
        if not isinstance(sleep_s, int | float) or isinstance(sleep_s, bool) or not 0 <= sleep_s <= MAX_SLEEP_S:
            raise InvalidParams(f"sleep_s: must be a number from 0 to {MAX_SLEEP_S:.0f}")
        crash = params.get("crash", False)
        if not isinstance(crash, bool):
            raise InvalidParams("crash: must be true or false")
        return {"sleep_s": float(sleep_s), "crash": crash}

    def run(self, ctx: RunContext) -> RunResult:
        started = time.monotonic()
        size_bytes = ctx.input_path.stat().st_size
        if ctx.params.get("crash"):
            # a fault drill: the media process dies as a native decoder crash would, with no answer
            os._exit(139)
        # a stop request ends the wait early, as any pipeline must
        if ctx.stop.wait(float(ctx.params.get("sleep_s", 0.0))):
            raise JobCancelled("stopped")
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        (ctx.output_dir / "result.json").write_text(json.dumps({"input_size_bytes": size_bytes}))
        ctx.on_progress(Progress(1, 1))
        return RunResult({"result": "result.json"}, frames_total=1, frames_inferred=0,
                         stats={"wall_s": time.monotonic() - started})
