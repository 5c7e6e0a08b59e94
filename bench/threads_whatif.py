"""What-if: one `detect` job in-process with other thread splits than framequeue's `stage_threads`.

Not part of `make bench`; a one-off probe of the default split (FQ_WORKER_THREADS=2 gives decode 1,
infer 1, encode 1, the same as FQ_WORKER_THREADS=1).

    python -m bench.threads_whatif INPUT 1,1,1 1,2,1 1,1,2     # decode,infer,encode threads per variant
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import framequeue.pipelines.detect as detect
import framequeue.pipelines.stages as stages
from bench.common import CLASSES, MODEL, Window, wait_quiet
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.base import RunContext


def run_variant(input_path: Path, split: tuple[int, int, int], repo: ModelRepository, out: Path) -> dict[str, Any]:
    original = stages.stage_threads
    # the pipeline sizes its model's pool, the stages their decoder and encoder: both read the split
    detect.stage_threads = stages.stage_threads = lambda threads: stages.StageThreads(*split)
    try:
        ctx = RunContext(input_path=input_path, output_dir=out, params={}, models=repo, threads=sum(split),
                         on_progress=lambda p: None, stop=threading.Event())
        wait_quiet()
        cpu0 = time.process_time()
        with Window() as window:
            result = detect.DetectPipeline().run(ctx)
        cpu = time.process_time() - cpu0
    finally:
        detect.stage_threads = stages.stage_threads = original
    return {"split": split, "fps": result.stats["fps"], "cpu_ms_per_frame": 1000 * cpu / result.frames_total,
            "stats": result.stats, "window": window.result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path)
    parser.add_argument("splits", nargs="+")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fq-bench-whatif-") as tmp:
        repo = ModelRepository(Path(tmp) / "models")
        repo.add("yolox_nano", MODEL, "yolox", CLASSES)
        for i, text in enumerate(args.splits):
            d, n, e = (int(x) for x in text.split(","))
            print(json.dumps(run_variant(args.input, (d, n, e), repo, Path(tmp) / f"out{i}")), flush=True)


if __name__ == "__main__":
    main()
