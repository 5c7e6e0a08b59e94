"""The "noop" pipeline: checks that the input exists and writes a one-line result. It measures what
framequeue itself costs per job (queue, claim, media child, commit), for the dispatch benchmark and for
deployment smoke tests, with no media work in the way. Fault and limit drills: `crash: true` makes the
media process exit abruptly (a job that crashes its worker every time), `segfault: true` kill it with
SIGSEGV (a native decoder crash), `alloc_mb` allocate and touch that much memory, `burn_s` spin the CPU
for that many CPU seconds, `output_mb` write an output of that size (a full scratch disk)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from framequeue.errors import InvalidParams, JobCancelled
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.base import Progress, RunContext, RunResult

#: the longest a noop job may pretend to work, seconds
MAX_SLEEP_S = 600.0
#: upper bounds of the drill params alloc_mb, output_mb (MiB) and burn_s (CPU seconds)
MAX_DRILL_MB = 64 * 1024
MAX_BURN_S = 600.0
_DRILLS = {"alloc_mb": MAX_DRILL_MB, "output_mb": MAX_DRILL_MB, "burn_s": MAX_BURN_S}
_MIB = 1024 * 1024


class NoopPipeline:
    name: ClassVar[str] = "noop"
    version: ClassVar[str] = "1"
    #: it only stats its input (framequeue.pipelines.base.reads_input_in_place)
    reads_input_in_place: ClassVar[bool] = True

    def validate(self, params: Mapping[str, Any], models: ModelRepository) -> dict[str, Any]:
        known = {"sleep_s", "crash", "segfault", *_DRILLS}
        unknown = sorted(set(params) - known)
        if unknown:
            raise InvalidParams(f"{unknown[0]}: unknown parameter; known: {', '.join(sorted(known))}")
        sleep_s = params.get("sleep_s", 0.0)
        if not isinstance(sleep_s, int | float) or isinstance(sleep_s, bool) or not 0 <= sleep_s <= MAX_SLEEP_S:
            raise InvalidParams(f"sleep_s: must be a number from 0 to {MAX_SLEEP_S:.0f}")
        crash = params.get("crash", False)
        if not isinstance(crash, bool):
            raise InvalidParams("crash: must be true or false")
        checked: dict[str, Any] = {"sleep_s": float(sleep_s), "crash": crash}
        # the drills appear in the params only when asked for
        if "segfault" in params:
            if not isinstance(params["segfault"], bool):
                raise InvalidParams("segfault: must be true or false")
            checked["segfault"] = params["segfault"]
        for name, high in _DRILLS.items():
            if name in params:
                value = params[name]
                if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= high:
                    raise InvalidParams(f"{name}: must be a number from 0 to {high:.0f}")
                checked[name] = value
        return checked

    def run(self, ctx: RunContext) -> RunResult:
        started = time.monotonic()
        size_bytes = ctx.input_path.stat().st_size
        if ctx.params.get("crash"):
            # a fault drill: the media process dies as a native decoder crash would, with no answer
            os._exit(139)
        if ctx.params.get("segfault"):
            signal.signal(signal.SIGSEGV, signal.SIG_DFL)  # no faulthandler: die as a crashed decoder does
            os.kill(os.getpid(), signal.SIGSEGV)
        if ctx.params.get("alloc_mb"):
            block = bytearray(int(ctx.params["alloc_mb"] * _MIB))  # zero-filled: every page is touched
            del block
        burn_until = time.process_time() + float(ctx.params.get("burn_s", 0.0))
        while time.process_time() < burn_until and not ctx.stop.is_set():
            sum(range(10_000))
        # a stop request ends the wait early, as any pipeline must
        if ctx.stop.wait(float(ctx.params.get("sleep_s", 0.0))):
            raise JobCancelled("stopped")
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        (ctx.output_dir / "result.json").write_text(json.dumps({"input_size_bytes": size_bytes}))
        outputs = {"result": "result.json"}
        if ctx.params.get("output_mb"):
            with open(ctx.output_dir / "filler.bin", "wb") as f:
                for _ in range(int(ctx.params["output_mb"])):
                    f.write(b"\0" * _MIB)
            outputs["filler"] = "filler.bin"
        ctx.on_progress(Progress(1, 1))
        return RunResult(outputs, frames_total=1, frames_inferred=0,
                         stats={"wall_s": time.monotonic() - started})
