"""Issue 17's benchmark: a long 720p video unsplit on one worker pinned to core 0 (run A) vs split into
segments of --segment-s on two workers pinned to cores 0 and 1 (run B), standing for two one-core machines;
real `framequeue api` + `framequeue worker` processes, the `detect` pipeline, the embedded deployment.
Then the scaling curve to 8, 32 and 128 workers for a --target-minutes video (framequeue.scaling.splitcurve, which
`framequeue simulate --split-measured bench/results/split.json` prints again from the saved measurement).

    .venv/bin/python -m bench.split.run [--minutes 30] [--segment-s 60] [--report-only]     (make bench-split)

Prints a table; writes bench/results/split.json (raw) and bench/results/split.md (a BENCHMARKS.md section).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS
from bench.split import measure
from bench.split.clip import long_clip
from bench.split.deploy import Deployment
from framequeue.scaling import splitcurve

GOAL_SPEEDUP = 1.8
GOAL_OVERHEAD_SHARE = 0.02


def _run(label: str, cores: list[int], path: Path, params: dict[str, Any]) -> dict[str, Any]:
    dep = Deployment(label, cores, RESULTS / "logs" / "split")
    load_before = os.getloadavg()[0]
    try:
        dep.start()
        t0 = time.monotonic()
        run = dep.run(path, params)
        run["client_wall_s"] = time.monotonic() - t0
    finally:
        dep.stop()
    run["loadavg_1m"] = [load_before, os.getloadavg()[0]]
    return run


def _core(result: dict[str, Any], worker: str) -> str:
    cores: dict[str, int] = result["records"]["B"].get("worker_cores", {})
    pid = worker.rsplit(":", 1)[-1]
    return f"core {cores[pid]}" if pid in cores else worker


def table(result: dict[str, Any]) -> str:
    a, b = result["unsplit"], result["split"]
    n = len(b["segments"])
    # n segments on 2 workers: at best n / ceil(n / 2) x, whatever the per-segment speed (1.5x for 3)
    bound = n / -(-n // 2)
    load = result["loadavg_1m"]
    lines = [
        f"input: {result['minutes']} min 720p30 ({a['frames']} frames), segments of {result['segment_s']:.0f} s",
        "",
        "| run | workers (pinned) | wall s | speedup |",
        "|---|---|---:|---:|",
        f"| A unsplit | 1 (core 0) | {a['wall_s']:.1f} | 1.00 |",
        f"| B split | 2 (cores 0, 1) | {b['wall_s']:.1f} | {result['speedup']:.2f} (goal >= {GOAL_SPEEDUP}) |",
        "",
        f"{n} segments on 2 workers bound the speedup at {bound:.2f}x; A ran {a['frames'] / a['processing_s']:.1f} "
        f"frames/s on its core; machine load (1-min loadavg, {result['machine']['cpus']} CPUs) before/after: "
        f"A {load['A'][0]:.1f}/{load['A'][1]:.1f}, B {load['B'][0]:.1f}/{load['B'][1]:.1f}",
        "",
        f"split phase {b['split_s']:.2f} s, stitch phase {b['stitch_s']:.2f} s: {100 * b['overhead_share']:.2f} % "
        f"of B's wall time (goal < {100 * GOAL_OVERHEAD_SHARE:.0f} %); hand-offs: split -> first segment "
        f"{b['split_to_segment_s']:.2f} s, last segment -> stitch {b['segment_to_stitch_s']:.2f} s",
        "",
        "| segment | worker | frames | processing s | frames/s |",
        "|---:|---|---:|---:|---:|",
        *(f"| {s['index']} | {_core(result, s['worker'])} | {s['frames']} | {s['processing_s']:.1f} | "
          f"{s['frames'] / s['processing_s']:.1f} |" for s in b["segments"]),
        "",
        splitcurve.markdown(result["curve"]).rstrip("\n"),
    ]
    return "\n".join(lines) + "\n"


def _measure(minutes: float, segment_s: float) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs cores 0 and 1 (taskset -c 0 / -c 1)")
    t0 = time.monotonic()
    path = long_clip(minutes)
    print(f"input {path} ({path.stat().st_size / 1e6:.0f} MB) ready in {time.monotonic() - t0:.1f} s", flush=True)
    run_a = _run("A", [0], path, {"split": False})
    print(f"A done: {run_a['job']['status']} in {run_a['client_wall_s']:.1f} s", flush=True)
    run_b = _run("B", [0, 1], path, {"split": True, "segment_s": segment_s})
    print(f"B done: {run_b['job']['status']} in {run_b['client_wall_s']:.1f} s", flush=True)
    return path, run_a, run_b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the measured video")
    parser.add_argument("--segment-s", type=float, default=60.0)
    parser.add_argument("--target-minutes", type=float, default=30.0, help="length the scaling curve predicts")
    parser.add_argument("--sla-s", type=float, default=300.0)
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: the tables again from the runs bench/results/split.json recorded")
    args = parser.parse_args()
    if args.report_only:
        saved = json.loads((RESULTS / "split.json").read_text())
        for key in ("minutes", "segment_s"):
            setattr(args, key, saved[key])
        path, run_a, run_b = Path(saved["input"]), saved["records"]["A"], saved["records"]["B"]
        date = saved["date"]
    else:
        path, run_a, run_b = _measure(args.minutes, args.segment_s)
        date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    a, b = measure.unsplit(run_a), measure.split(run_b)
    if a["status"] != "succeeded" or b["status"] != "succeeded":
        raise SystemExit(f"a run failed: A {a['status']}, B {b['status']} (logs in {RESULTS / 'logs' / 'split'})")
    measured = splitcurve.Measurement(
        video_s=a["video_s"], segment_s=args.segment_s, split_s=b["split_s"], stitch_s=b["stitch_s"],
        segments_s=tuple(s["processing_s"] for s in b["segments"]),
        handoffs_s=(b["split_to_segment_s"], b["segment_to_stitch_s"]), unsplit_s=a["processing_s"],
    )
    result = {
        "date": date,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "minutes": args.minutes, "segment_s": args.segment_s, "target_minutes": args.target_minutes,
        "input": str(path),
        "unsplit": a, "split": b, "speedup": a["wall_s"] / b["wall_s"],
        "goals": {"speedup": GOAL_SPEEDUP, "overhead_share": GOAL_OVERHEAD_SHARE},
        "loadavg_1m": {"A": run_a["loadavg_1m"], "B": run_b["loadavg_1m"]},
        # what `framequeue simulate --split-measured` reads
        "measured": measured.to_json(),
        "curve": splitcurve.curve(measured, args.target_minutes, args.sla_s),
        "records": {"A": run_a, "B": run_b},
    }
    text = table(result)
    print(text, end="")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "split.json").write_text(json.dumps(result, indent=1, default=str))
    (RESULTS / "split.md").write_text(f"## Long videos split (issue 17), {result['date']}\n\n{text}")
    print(f"wrote {RESULTS / 'split.json'} and {RESULTS / 'split.md'}")


if __name__ == "__main__":
    main()
