"""The `road` pipeline benchmark: `make bench-road` (full, ~25 min) or `python -m bench.road --quick` (~4 min).

In one run, for the dashcam clip (960x540, 25 fps, 221 frames) and the 60 s 1280x720 30 fps clip of
bench/clips.py, with the demo's params (`speed_mps` 27, the two-second rule):
  (1) framequeue end to end: a real `framequeue up` with both models registered, one `road` job at a time
      submitted over HTTP (submit -> succeeded, server clock), median of the repeats
  (2) each stage's CPU per frame, alone and one after another in-process (bench/road_stages.py), and the
      2-core ceiling = 2 cores / their sum; plus RoadPipeline.run in-process for its per-thread CPU
  (3) several copies queued at once, aggregate frames/s as a share of that ceiling, for the two worker-pool
      configurations of bench/run.py (d): FQ_WORKERS=2 FQ_WORKER_THREADS=1 (default) and 1 x 2
  (4) the naive sequential script (bench/road_naive.py); ratio framequeue / naive
  (5) peak RSS of the worker process tree on the 60 s vs the 240 s clip
  (6) `sample_fps` 17 on the 720p clip (one job, and one job per worker at once): analysed frames/s, and how
      many videos needing 17 analysed frames/s one 2-core machine sustains
Raw results go to bench/results/road.json and the Markdown section to bench/results/road.md; a full run also
replaces the "## The road pipeline (close following)" section of BENCHMARKS.md. --quick (dashcam clip only,
one repeat, no 240 s clip) writes bench/results/road-quick.* and leaves BENCHMARKS.md alone unless
--update-doc. `--render FILE` rewrites the section from a saved road.json without measuring.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from bench import clips
from bench.common import (
    CORES,
    DASHCAM,
    PYTHON,
    RESULTS,
    ROOT,
    loadavg,
    machine_info,
    median,
    replace_section,
    rounded,
    run_module_json,
)
from bench.road_stages import LANE_MODEL, SUBMIT_PARAMS
from bench.run import Clip, clip_facts, log, measured
from bench.service import Deployment, JobRun

SECTION_TITLE: Final = "## The road pipeline (close following)"
#: analysed frames per second the seed fleet needs per video (docs/PERFORMANCE.md)
FLEET_FPS: Final = 17.0
#: goals of the issue: share of the 2-core ceiling, framequeue / naive, 240 s / 60 s peak RSS
GOAL_CEILING: Final = 0.90
GOAL_NAIVE: Final = 1.3
GOAL_MEMORY: Final = 1.10


@dataclass(frozen=True)
class Plan:
    quick: bool
    clips: tuple[Clip, ...]
    #: the clip also run with sample_fps FLEET_FPS (videos per machine)
    capacity: Clip
    #: the long clip for the memory comparison; None in --quick
    long_clip: Clip | None = None
    #: (workers, worker_threads); the first is the default and runs the single jobs, memory and sampling
    pools: tuple[tuple[int, int], ...] = ((2, 1), (1, 2))


def make_plan(quick: bool) -> Plan:
    if quick:
        dashcam = Clip("dashcam", "solidWhiteRight.mp4 (960x540, 25 fps, 221 frames)", DASHCAM, 1, 4, 1)
        return Plan(quick=True, clips=(dashcam,), capacity=dashcam)
    dashcam = Clip("dashcam", "solidWhiteRight.mp4 (960x540, 25 fps, 221 frames)", DASHCAM, 3, 6)
    log("synthetic clips (made once, cached in bench/results/clips/)")
    synth60 = Clip("synth60", "synthetic 60 s (1280x720, 30 fps, 1800 frames)", clips.make_clip(60), 1, 4, 2)
    synth240 = Clip("synth240", "synthetic 240 s (1280x720, 30 fps, 7200 frames)", clips.make_clip(240), 1, 0, 1)
    return Plan(quick=False, clips=(dashcam, synth60), capacity=synth60, long_clip=synth240)


class RoadDeployment(Deployment):
    """bench.service's `framequeue up` with the lane model registered too, submitting `road` jobs."""

    def start(self) -> None:
        subprocess.run(
            [PYTHON, "-m", "framequeue", "models", "add", "lstr", str(LANE_MODEL), "--format", "lstr"],
            env=self.env, check=True, capture_output=True, timeout=300,
        )
        super().start()

    def submit(self, clip: str, path: Path, sample_fps: float | None = None) -> JobRun:
        key = self.upload(path)
        params = {**SUBMIT_PARAMS, **({} if sample_fps is None else {"sample_fps": sample_fps})}
        t = time.time()
        record = self.client.submit({"pipeline": "road", "input": {"key": key}, "params": params})
        return JobRun(record["id"], clip, t, record)


# -- in-process measurements (separate processes) -----------------------------------------------------


def bench_stages(clip: Clip) -> dict[str, Any]:
    """Stage CPU costs, median over the repeats by their sum."""
    runs = [measured(lambda: run_json("road_stages", clip), tries=clip.tries) for _ in range(clip.repeats)]
    mid = sorted(runs, key=lambda run: run["sum_ms_per_frame"])[len(runs) // 2]
    result = {k: mid[k] for k in ("frames", "stage_threads", "cpu_ms_per_frame", "sum_ms_per_frame", "summary")}
    result["runs"] = runs
    result["ceiling_fps"] = 1000.0 * CORES / result["sum_ms_per_frame"]
    log(f"  stages {clip.key}: {result['sum_ms_per_frame']:.1f} ms/frame -> ceiling {result['ceiling_fps']:.1f} fps")
    return result


def bench_pipelined(clip: Clip) -> dict[str, Any]:
    result = measured(lambda: run_json("road_stages", clip, "--pipelined"), tries=clip.tries)
    log(f"  RoadPipeline.run in-process {clip.key}: {result['fps']:.1f} fps")
    return result


def bench_parallel(clip: Clip, stages: str = "road_stages") -> dict[str, Any]:
    """One `bench.<stages>` process per core at once: sequential jobs side by side, no threads inside a job.
    Their CPU per frame against the stages alone separates the cost of sharing the cores from that of
    pipelining inside a job. (The driver benchmark runs it with its own stages module.)"""

    def together() -> dict[str, Any]:
        procs = [subprocess.Popen([PYTHON, "-m", f"bench.{stages}", str(clip.path)], cwd=ROOT,
                                  stdout=subprocess.PIPE, text=True) for _ in range(CORES)]
        outs = [json.loads(proc.communicate(timeout=1800)[0].strip().splitlines()[-1]) for proc in procs]
        if any(proc.returncode for proc in procs):
            raise RuntimeError(f"bench.{stages} {clip.path} failed")
        return {"processes": len(outs), "fps": sum(o["frames"] / o["wall_s"] for o in outs),
                "sum_ms_per_frame": median([o["sum_ms_per_frame"] for o in outs]),
                "runs": [{k: o[k] for k in ("frames", "wall_s", "sum_ms_per_frame", "cpu_ms_per_frame")} for o in outs]}

    result = measured(together, tries=clip.tries)
    log(f"  {CORES} x {stages} at once {clip.key}: {result['fps']:.1f} fps, "
        f"{result['sum_ms_per_frame']:.1f} ms/frame")
    return result


def bench_naive(clip: Clip, naive: str = "road_naive") -> dict[str, Any]:
    """The naive sequential script `bench.<naive>` on the clip, median of the repeats."""
    runs = []
    with tempfile.TemporaryDirectory(prefix=f"fq-bench-{naive}-") as tmp:
        for _ in range(clip.repeats):
            runs.append(measured(lambda: run_json(naive, clip, tmp), tries=clip.tries))
            log(f"  naive {clip.key}: {runs[-1]['fps']:.1f} fps")
    return {"runs": runs, "fps": median([r["fps"] for r in runs]), "cpu_s": median([r["cpu_s"] for r in runs])}


def run_json(module: str, clip: Clip, *args: str) -> dict[str, Any]:
    return run_module_json(module, str(clip.path), *args, timeout_s=1800)


# -- framequeue up ---------------------------------------------------------------------------------------


def job_facts(run: JobRun) -> dict[str, Any]:
    return {"id": run.id, "frames": run.frames, "e2e_s": run.finished - run.created,
            "client_e2e_s": run.seen_done_epoch - run.submit_epoch, "queue_s": run.started - run.created}


def road_output(dep: Deployment, run: JobRun) -> dict[str, Any]:
    """The job's road.json summary and its count of inferred frames (downloaded after the measurement)."""
    with tempfile.TemporaryDirectory(prefix="fq-bench-dl-") as tmp:
        doc = json.loads(dep.client.download(run.id, "road", Path(tmp)).read_text())
    return {"summary": doc["summary"], "frames_inferred": sum(bool(fr["inferred"]) for fr in doc["frames"])}


def single_jobs(dep: RoadDeployment, clip: Clip, repeats: int, sample_fps: float | None = None) -> dict[str, Any]:
    assert dep.sampler is not None
    sampler = dep.sampler
    runs, memory, jobs = [], [], []
    for _ in range(repeats):
        def one() -> dict[str, Any]:
            sampler.begin()
            cpu0 = sampler.cpu_s()
            run = dep.submit(clip.key, clip.path, sample_fps)
            dep.wait([run])
            tree_cpu = sampler.cpu_s() - cpu0
            memory.append(asdict(sampler.end()))
            jobs.append(run)
            return {"job": job_facts(run), "fps": run.frames / max(1e-9, run.finished - run.created),
                    "tree_cpu_ms_per_frame": 1000 * tree_cpu / max(1, run.frames)}

        runs.append(measured(one, sampler.cpu_s, tries=clip.tries))
        runs[-1].update(road_output(dep, jobs[-1]))
        log(f"  framequeue {dep.name} {clip.key}{label(sample_fps)}: {runs[-1]['fps']:.1f} fps end to end")
    return {"runs": runs, "fps": median([r["fps"] for r in runs]), "sample_fps": sample_fps,
            "tree_cpu_ms_per_frame": median([r["tree_cpu_ms_per_frame"] for r in runs]),
            "frames_inferred": runs[0]["frames_inferred"],
            "memory": max(memory, key=lambda m: m["worker_tree_kib"])}


def aggregate(dep: RoadDeployment, clip: Clip, copies: int, sample_fps: float | None = None) -> dict[str, Any]:
    assert dep.sampler is not None

    def queued() -> dict[str, Any]:
        dep.upload(clip.path)
        runs = [dep.submit(clip.key, clip.path, sample_fps) for _ in range(copies)]
        dep.wait(runs)
        frames = sum(r.frames for r in runs)
        wall = max(r.finished for r in runs) - min(r.created for r in runs)
        return {"copies": copies, "frames": frames, "wall_s": wall, "fps": frames / wall, "sample_fps": sample_fps,
                "jobs": [job_facts(r) for r in runs]}

    result = measured(queued, dep.sampler.cpu_s, tries=clip.tries)
    w = result["window"]
    result["cpu_ms_per_frame"] = 1000 * w["own_cores"] * w["wall_s"] / result["frames"]
    log(f"  framequeue {dep.name} {copies} x {clip.key}{label(sample_fps)}: {result['fps']:.1f} fps aggregate")
    return result


def bench_memory(plan: Plan) -> dict[str, Any]:
    """Peak RSS for the 60 s and the 240 s clip, each on a fresh one-worker `framequeue up` after the same one
    warm-up job: a worker's media child serves many jobs and keeps some memory from each, so comparing two clips
    on one deployment compares their job histories as much as their lengths."""
    assert plan.long_clip is not None
    out: dict[str, Any] = {}
    for clip in (plan.capacity, plan.long_clip):
        dep = RoadDeployment(f"road-mem-{clip.key}", 1, 1)
        try:
            dep.start()
            dep.wait([dep.submit("warmup", DASHCAM)])
            out[clip.key] = single_jobs(dep, clip, 1)
        finally:
            dep.stop()
        peak_mib = out[clip.key]["memory"]["worker_tree_kib"] / 1024
        log(f"  fresh deployment {clip.key}: peak worker tree {peak_mib:.0f} MiB")
    return out


def label(sample_fps: float | None) -> str:
    return "" if sample_fps is None else f" (sample_fps {sample_fps:g})"


def bench_pool(plan: Plan, workers: int, threads: int) -> dict[str, Any]:
    """The default pool runs everything; the other only the several-videos case, since stage_threads(2) is
    stage_threads(1) and a single job runs the same on both."""
    name = f"w{workers}t{threads}"
    default = (workers, threads) == plan.pools[0]
    log(f"framequeue up, FQ_WORKERS={workers} FQ_WORKER_THREADS={threads}")
    dep = RoadDeployment(f"road-{name}", workers, threads)
    out: dict[str, Any] = {"workers": workers, "worker_threads": threads, "single": {}, "aggregate": {}}
    try:
        dep.start()
        # each worker's first job also starts its fork server: one warm-up job per worker, queued together
        dep.wait([dep.submit("warmup", DASHCAM) for _ in range(workers)])
        if default:
            for clip in plan.clips:
                out["single"][clip.key] = single_jobs(dep, clip, clip.repeats)
            if plan.long_clip is not None:
                out["single"][plan.long_clip.key] = single_jobs(dep, plan.long_clip, 1)
            out["single"]["sampled"] = single_jobs(dep, plan.capacity, 1, FLEET_FPS)
        for clip in plan.clips:
            # one worker runs the copies one after another: two show its steady state
            copies = clip.copies if workers > 1 or clip.key == "dashcam" else 2
            out["aggregate"][clip.key] = aggregate(dep, clip, copies)
        if default:
            # one job per worker keeps both busy to the end, without a tail of one job alone
            out["aggregate"]["sampled"] = aggregate(dep, plan.capacity, workers, FLEET_FPS)
    finally:
        dep.stop()
    return out


# -- the Markdown section ----------------------------------------------------------------------------------

POOLS: Final = {"w2t1": "FQ_WORKERS=2, FQ_WORKER_THREADS=1 (default)", "w1t2": "FQ_WORKERS=1, FQ_WORKER_THREADS=2"}
#: stage columns of road_stages (ms CPU per frame), with their headings
STAGE_HEADS: Final = {"decode": "decode → BGR", "detector": "detector (YOLOX-nano, batch 4)",
                      "lanes": "lanes (LSTR, frame by frame)", "track_geometry": "tracking + lanes + geometry",
                      "draw": "draw + sheet", "json": "JSON record", "encode": "H.264 encode",
                      "finish": "timeline.png (once, per frame)"}
#: a measurement during which other work took more cores than this is marked with DAGGER
FOREIGN_MARK: Final = 0.15
DAGGER: Final = " †"


def f(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or value != value else f"{value:,.{digits}f}"


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def mark(*nodes: dict[str, Any]) -> str:
    worst = max((n.get("window", {}).get("foreign_cores", 0.0) for n in nodes), default=0.0)
    return DAGGER if worst > FOREIGN_MARK else ""


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def sampled_ceiling(r: dict[str, Any]) -> float:
    """The capacity clip's ceiling with sample_fps 17, from its every-frame stage costs: the models' CPU
    scaled by the share of frames inferred (an estimate: tracking between inferred frames is a prediction)."""
    key = r["capacity_clip"]
    ms, frames = r["stages"][key]["cpu_ms_per_frame"], r["clips"][key]["frames"]
    share = r["framequeue"]["w2t1"]["single"]["sampled"]["frames_inferred"] / frames
    per_frame = sum(ms.values()) - (1 - share) * (ms["detector"] + ms["lanes"])
    return 1000.0 * CORES / per_frame


def per_clip(r: dict[str, Any], key: str) -> str:
    fq, st, naive, pl = r["framequeue"], r["stages"][key], r["naive"][key], r["pipelined"][key]
    ceiling, frames = st["ceiling_fps"], r["clips"][key]["frames"]

    def row(name: str, fps: float, cpu_ms: float, runs: int, mk: str, ceil: float = ceiling) -> list[str]:
        return [name, f(fps) + mk, f(cpu_ms), f"**{fps / naive['fps']:.2f}x**", f"{100 * fps / ceil:.0f} %", str(runs)]

    single = fq["w2t1"]["single"][key]
    rows = [row("framequeue up, one job (default pool)", single["fps"], single["tree_cpu_ms_per_frame"],
                len(single["runs"]), mark(*single["runs"]))]
    for pool, res in fq.items():
        agg = res["aggregate"][key]
        rows.append(row(f"framequeue up, {agg['copies']} copies queued ({POOLS.get(pool, pool)})", agg["fps"],
                        agg["cpu_ms_per_frame"], 1, mark(agg)))
    rows.append(row("`RoadPipeline.run` in-process, one job (no HTTP, no worker)", pl["fps"],
                    1000 * pl["process_cpu_s"] / frames, 1, mark(pl)))
    par = r["parallel"][key]
    rows.append(row(f"{par['processes']} sequential `bench.road_stages` processes at once (no threads in a job)",
                    par["fps"], par["sum_ms_per_frame"], 1, mark(par)))
    rows.append(row("naive sequential script (`bench/road_naive.py`)", naive["fps"], 1000 * naive["cpu_s"] / frames,
                    len(naive["runs"]), mark(*naive["runs"])))
    rows.append(row("2-core ceiling (stage CPU sum / 2, below)", ceiling, st["sum_ms_per_frame"], len(st["runs"]),
                    mark(*st["runs"])))
    if key == r["capacity_clip"]:
        ceil17 = sampled_ceiling(r)
        one, agg = fq["w2t1"]["single"]["sampled"], fq["w2t1"]["aggregate"]["sampled"]
        rows.append(row(f"framequeue up, one job, sample_fps {r['fleet_fps']:g}", one["fps"],
                        one["tree_cpu_ms_per_frame"], 1, mark(*one["runs"]), ceil17))
        rows.append(row(f"framequeue up, {agg['copies']} jobs at once, sample_fps {r['fleet_fps']:g}", agg["fps"],
                        agg["cpu_ms_per_frame"], 1, mark(agg), ceil17))
        rows.append(["2-core ceiling with sample_fps 17 (estimated: model CPU × share inferred)", f(ceil17), "–", "–",
                     "100 %", "–"])
    s = single["runs"][0]["summary"]
    check = (f"Same work: tracks {s['tracks']} / {naive['runs'][0]['summary']['tracks']} / "
             f"{st['summary']['tracks']} and lead on {100 * s['share_lead']:.0f} / "
             f"{100 * naive['runs'][0]['summary']['share_lead']:.0f} / {100 * st['summary']['share_lead']:.0f} % of "
             f"frames (framequeue / naive / stages), ego lane on {100 * s['share_ego_lane']:.0f} %.")
    if not s["share_lead"]:
        check += (" No frame has a lead (no vehicle is in the ego lane in this footage), so distance, time gap and "
                  "TTC are never computed: their cost, and the lead box on the overlay, are not in these numbers.")
    check += "\n"
    return (f"\n**{r['clips'][key]['label']}**\n\n"
            + table(["", "frames/s", "CPU ms/frame", "vs naive", "share of ceiling", "runs"], rows) + "\n" + check)


def stage_table(r: dict[str, Any]) -> str:
    rows = []
    for key, st in r["stages"].items():
        ms = st["cpu_ms_per_frame"]
        sums = [run["sum_ms_per_frame"] for run in st["runs"]]
        render_encode = ms["draw"] + ms["json"] + ms["encode"]
        rows.append([r["clips"][key]["label"]] + [f(ms[k], 2) for k in STAGE_HEADS]
                    + [f(st["sum_ms_per_frame"], 1) + mark(*st["runs"]), f"{min(sums):.1f}–{max(sums):.1f}",
                       f(render_encode, 1), f(st["ceiling_fps"])])
    head = ["clip", *STAGE_HEADS.values(), "sum (median)", "sum range", "render + encode", "ceiling frames/s"]
    return table(head, rows)


def thread_table(r: dict[str, Any]) -> str:
    rows = []
    for key, pl in r["pipelined"].items():
        s, frames = pl["stats"], pl["frames"]
        wall = s["wall_s"]
        cells = []
        for name in ("decode_cpu_s", "infer_cpu_s", "infer_side_cpu_s", "output_cpu_s"):
            cells.append(f"{f(1000 * s[name] / frames, 1)} ({100 * s[name] / wall:.0f} %)")
        rows.append([r["clips"][key]["label"], *cells, f(1000 * pl["process_cpu_s"] / frames, 1),
                     f(1000 * wall / frames, 1), f(pl["process_cpu_s"] / pl["wall_s"], 2), f(pl["fps"])])
    head = ["clip", "decode thread", "infer thread (both preprocess + YOLOX)", "LSTR side thread",
            "output thread (sink + encode)", "process CPU", "wall", "cores busy", "frames/s"]
    return table(head, rows)


def aggregate_table(r: dict[str, Any]) -> str:
    rows = []
    for pool, res in r["framequeue"].items():
        for key, agg in res["aggregate"].items():
            clip = r["capacity_clip"] if key == "sampled" else key
            ceiling = sampled_ceiling(r) if key == "sampled" else r["stages"][key]["ceiling_fps"]
            w = agg["window"]
            name = r["clips"][clip]["label"] + (f", sample_fps {agg['sample_fps']:g}" if agg["sample_fps"] else "")
            rows.append([POOLS.get(pool, pool), name, str(agg["copies"]), str(agg["frames"]), f(agg["wall_s"]),
                         f(agg["fps"]) + mark(agg), f"**{100 * agg['fps'] / ceiling:.0f} %**",
                         f(agg["cpu_ms_per_frame"]), f(w["busy_cores"], 2), f(w["foreign_cores"], 2)])
    head = ["pool", "clip", "copies", "frames", "wall s", "frames/s", "% of ceiling", "CPU ms/frame", "busy cores",
            "foreign cores"]
    return table(head, rows)


def memory_ratio(r: dict[str, Any]) -> float | None:
    """240 s / 60 s peak worker-tree RSS: from fresh deployments when measured so, else from the default pool."""
    single = r.get("memory_fresh") or r["framequeue"]["w2t1"]["single"]
    if "synth240" not in single or "synth60" not in single:
        return None
    ratio: float = single["synth240"]["memory"]["worker_tree_kib"] / single["synth60"]["memory"]["worker_tree_kib"]
    return ratio


def memory_table(r: dict[str, Any]) -> str:
    rows = []
    for key, single in r["framequeue"]["w2t1"]["single"].items():
        mem = single["memory"]
        name = r["clips"][r["capacity_clip"] if key == "sampled" else key]["label"] + label(single["sample_fps"])
        rows.append([name, f(mem["worker_tree_kib"] / 1024, 0), f(mem["media_child_kib"] / 1024, 0),
                     str(mem["samples"])])
    out = table(["one job of", "peak worker tree MiB", "peak media child MiB", "samples"], rows)
    fresh = r.get("memory_fresh")
    if fresh:
        out += ("\nThe same clips each on a fresh one-worker `framequeue up` after one warm-up job (equal job "
                "history, so only the video's length differs):\n\n")
        out += table(["one job of", "peak worker tree MiB", "peak media child MiB", "samples"], [
            [r["clips"][key]["label"], f(m["memory"]["worker_tree_kib"] / 1024, 0),
             f(m["memory"]["media_child_kib"] / 1024, 0), str(m["memory"]["samples"])] for key, m in fresh.items()])
    ratio = memory_ratio(r)
    if ratio is not None:
        source = "fresh deployments" if fresh else "one deployment, after different job histories"
        out += (f"\n240 s / 60 s peak worker-tree RSS = **{ratio:.3f}** ({source}; goal ≤ {GOAL_MEMORY:.2f}: "
                f"{verdict(ratio <= GOAL_MEMORY)}).\n")
    return out


def capacity(r: dict[str, Any]) -> tuple[str, dict[str, float]]:
    key, need = r["capacity_clip"], r["fleet_fps"]
    clip, w2 = r["clips"][key], r["framequeue"]["w2t1"]
    every, sampled = w2["aggregate"][key], w2["aggregate"]["sampled"]
    share = w2["single"]["sampled"]["frames_inferred"] / clip["frames"]
    rows, videos = [], {}
    for kind, name, agg, inferred in (("every", "every frame analysed", every, 1.0),
                                      ("sampled", f"sample_fps {need:g}", sampled, share)):
        analysed = agg["fps"] * inferred
        videos[kind] = analysed / need
        rows.append([f"{clip['width']}x{clip['height']} {clip['fps']:g} fps, {name} ({agg['copies']} jobs queued)",
                     f(agg["fps"]), f"{100 * inferred:.0f} %", f(analysed), f"**{analysed / need:.2f}**",
                     f"{agg['fps'] / clip['fps']:.2f}"])
    head = ["configuration", "frames/s (all, aggregate)", "frames analysed", "analysed frames/s",
            f"videos at {need:g} analysed frames/s", f"real-time {clip['fps']:g} fps streams"]
    return table(head, rows), videos


def goals(r: dict[str, Any]) -> str:
    lines = []
    fq = r["framequeue"]
    for key in r["stages"]:
        agg = fq["w2t1"]["aggregate"][key]
        share = agg["fps"] / r["stages"][key]["ceiling_fps"]
        ratio = fq["w2t1"]["single"][key]["fps"] / r["naive"][key]["fps"]
        lines.append(f"- {key}: several queued at **{100 * share:.0f} %** of the ceiling (goal ≥ "
                     f"{100 * GOAL_CEILING:.0f} %: {verdict(share >= GOAL_CEILING)}); one job **{ratio:.2f}x** the "
                     f"naive script (goal ≥ {GOAL_NAIVE}x: {verdict(ratio >= GOAL_NAIVE)}).\n")
    ratio = memory_ratio(r)
    if ratio is not None:
        lines.append(f"- memory: 240 s / 60 s peak RSS **{ratio:.3f}** (goal ≤ {GOAL_MEMORY:.2f}: "
                     f"{verdict(ratio <= GOAL_MEMORY)}).\n")
    return "".join(lines)


def pct_over(value: float, base: float) -> str:
    change = 100 * (value / base - 1)
    return "±0 %" if abs(change) < 0.5 else f"{change:+.0f} %"


def breakdown(r: dict[str, Any]) -> str:
    """Why the numbers are what they are, from the measurements."""
    out = []
    for key, st in r["stages"].items():
        ms, total = st["cpu_ms_per_frame"], st["sum_ms_per_frame"]
        models = ms["detector"] + ms["lanes"]
        pl, par, frames = r["pipelined"][key], r["parallel"][key], r["clips"][key]["frames"]
        pl_ms = 1000 * pl["process_cpu_s"] / frames
        agg = r["framequeue"]["w2t1"]["aggregate"][key]
        s = pl["stats"]
        threads = {"output": s["output_cpu_s"], "infer": s["infer_cpu_s"], "LSTR side": s["infer_side_cpu_s"],
                   "decode": s["decode_cpu_s"]}
        busiest = max(threads, key=lambda k: threads[k])
        busy_share = threads[busiest] / s["wall_s"]
        limit = (f"the {busiest} thread is the bottleneck ({100 * busy_share:.0f} % of the wall time)"
                 if busy_share >= 0.9 else
                 f"no thread is saturated (busiest: {busiest}, {100 * busy_share:.0f} % of the wall time): one job's "
                 f"four busy threads share two cores")
        naive_ms = 1000 * r["naive"][key]["cpu_s"] / frames
        own = agg["window"]["own_cores"]
        sums = [run["sum_ms_per_frame"] for run in st["runs"]] + [run["sum_ms_per_frame"] for run in par["runs"]]
        gap = (f"The queued jobs kept {own:.2f} cores busy: what separates them from the ceiling is CPU per frame, "
               f"not idle cores (stage CPU itself moved {min(sums):.1f}–{max(sums):.1f} ms between runs here)."
               if own >= 1.85 else f"The queued jobs kept only {own:.2f} cores busy: part of the gap is idle cores.")
        out.append(
            f"- **{key}**: of {total:.1f} ms CPU a frame, the two models take {models:.1f} ms "
            f"({100 * models / total:.0f} %: YOLOX {ms['detector']:.1f}, LSTR {ms['lanes']:.1f}), H.264 encoding "
            f"{ms['encode']:.1f} ms ({100 * ms['encode'] / total:.0f} %), decode {ms['decode']:.1f}, tracking + lanes "
            f"+ lead + geometry {ms['track_geometry']:.1f}, drawing {ms['draw']:.1f}, JSON {ms['json']:.1f}, "
            f"timeline.png {ms['finish']:.1f} ms. One job in-process runs at {pl['fps']:.1f} frames/s on "
            f"{pl['process_cpu_s'] / pl['wall_s']:.2f} busy cores; {limit}. Its CPU per frame is {pl_ms:.1f} ms "
            f"({pct_over(pl_ms, total)} over the stages alone), and several queued jobs cost "
            f"{agg['cpu_ms_per_frame']:.1f} ms a frame for the whole `framequeue up` tree "
            f"({pct_over(agg['cpu_ms_per_frame'], total)}) on {agg['window']['busy_cores']:.2f} busy cores; "
            f"{par['processes']} sequential processes side by side cost {par['sum_ms_per_frame']:.1f} ms "
            f"({pct_over(par['sum_ms_per_frame'], total)}) and reach {100 * par['fps'] / st['ceiling_fps']:.0f} % "
            f"of the ceiling. {gap} The naive script spends {naive_ms:.1f} ms a "
            f"frame ({naive_ms / total:.1f}x the stages): two ONNX Runtime sessions with default, spinning pools "
            f"and x264's default threads.\n")
    return "".join(out)


def interference(r: dict[str, Any]) -> str:
    windows: list[tuple[str, dict[str, Any]]] = []

    def walk(name: str, node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("window"), dict):
                windows.append((name, node["window"]))
            for k, v in node.items():
                walk(f"{name}/{k}", v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(f"{name}[{i}]", v)

    walk("", r)
    if not windows:
        return ""
    worst = max(windows, key=lambda w: w[1]["foreign_cores"])
    mean = sum(w["foreign_cores"] for _, w in windows) / len(windows)
    marked = sum(w["foreign_cores"] > FOREIGN_MARK for _, w in windows)
    loads = [w["loadavg_1m"] for _, w in windows]
    return (f"Load average (1 min) {r['loadavg_1m_start']:.2f} at the start, {r['loadavg_1m_end']:.2f} at the end, "
            f"{min(loads):.2f}–{max(loads):.2f} at the ends of the measurements. Each measurement waited for a quiet "
            f"machine (`bench.common.wait_quiet`) and was taken again when other work took more than {FOREIGN_MARK} "
            f"cores; foreign CPU over the {len(windows)} kept measurements: mean {mean:.2f} cores, worst "
            f"{worst[1]['foreign_cores']:.2f} (`{worst[0].lstrip('/')}`); {marked} marked{DAGGER}.\n")


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    cap_table, videos = capacity(r)
    cap = r["clips"][r["capacity_clip"]]
    suffix = "-quick" if r["mode"] == "quick" else ""
    parts = [
        f"{SECTION_TITLE}\n\n",
        "```bash\nmake bench-road                      # full run, ~25 min on a quiet machine; rewrites this section\n"
        "python -m bench.road --quick         # dashcam clip, one repeat, no 240 s clip, ~4 min: bench/results/"
        "road-quick.*\n```\n\n",
        f"Command: `{r['command']}` ({r['mode']} run, {r['elapsed_s'] / 60:.1f} min), {m['date_utc']}; raw results in "
        f"`bench/results/road{suffix}.json`. Job params: `{json.dumps(r['submit_params'])}` (the demo's).\n\n",
        table(["nproc", "CPU", "SIMD", "RAM", "onnxruntime", "av (PyAV)", "opencv", "numpy"],
              [[str(m["nproc"]), m["cpu_model"], ", ".join(m["cpu_flags"]), f"{m['memory_gib']} GiB",
                m["onnxruntime"], m["av"], m["opencv-python-headless"], m["numpy"]]]),
        "\nWhat is measured: **framequeue up** = a real `framequeue up` in a temp `FQ_HOME` with both models added "
        "(`framequeue models add yolox_nano … --format yolox --classes …`, `framequeue models add lstr "
        "…/lstr_360x640.onnx --format lstr`), the clip uploaded once, `road` jobs submitted over HTTP, frames / "
        "(`created_at` → `finished_at`); every worker first runs a warm-up job. Single jobs: median of the repeats, "
        "CPU = the whole `framequeue up` tree (API, worker, fork server, media child). **Stages** "
        "(`bench/road_stages.py`): framequeue's own code with its `stage_threads` (one thread per native pool), "
        "each stage run alone one after another on each batch of 4 frames and timed by process CPU; the sink's "
        "CPU is split by its own timers. Ceiling = 2 cores / sum. **RoadPipeline.run in-process**: the pipeline "
        "itself in one process (no API, no worker), for its per-thread CPU (`RunResult.stats`). **Naive** "
        "(`bench/road_naive.py`): decode → YOLOX → LSTR → framequeue's `RoadSink` (ByteTrack, lanes, lead, "
        "geometry, events, `draw_road`, JSON) → encode, frame by frame in one thread of control with every "
        "library's default threading. † marks a measurement during which other work took more than "
        f"{FOREIGN_MARK} cores.\n",
        "\n### Throughput per clip\n",
    ]
    parts += [per_clip(r, key) for key in r["stages"]]
    parts += [
        "\n### CPU per frame of each stage, alone (ms; `bench/road_stages.py`)\n\n", stage_table(r),
        "\n### One job's threads (`RoadPipeline.run` in-process): CPU ms per frame (share of the wall time)\n\n",
        thread_table(r),
        "\n### Several videos queued: aggregate throughput vs the ceiling\n\n"
        "All copies submitted at once; aggregate = total frames / (first `created_at` → last `finished_at`); CPU "
        "ms/frame = the benchmark's own CPU (the `framequeue up` tree and the polling client) / frames. The "
        "one-worker pool ran 2 copies of the 60 s clip (one after another: its steady state) and only this case: "
        "`stage_threads(2)` equals `stage_threads(1)` (decode 1, infer 1, encode 1), so a single job runs the same "
        "on both pools.\n\n",
        aggregate_table(r),
        "\n### Memory: peak RSS while one job runs (default pool)\n\n"
        "VmRSS from /proc every 100 ms; worker tree = worker + fork server + the job's media child (summed).\n\n",
        memory_table(r),
        f"\n### Videos per 2-core machine at {r['fleet_fps']:g} analysed frames/s\n\n"
        f"Aggregate analysed frames/s of the several-queued runs / {r['fleet_fps']:g}. `road` analyses every frame "
        "unless `sample_fps` is set; with `sample_fps` the overlay is still drawn and encoded on every frame. The "
        f"last column is how many {cap['fps']:g} fps cameras the machine keeps up with in real time.\n\n",
        cap_table,
        "\n### Goals\n\n", goals(r),
        f"- videos per machine: **{videos['sampled']:.2f}** at "
        f"{cap['width']}x{cap['height']} {cap['fps']:g} fps with `sample_fps` {r['fleet_fps']:g} "
        f"({videos['every']:.2f} by the formula when every frame is analysed, each of those videos "
        f"then needing {cap['fps']:g} analysed frames/s, not {r['fleet_fps']:g}).\n",
        "\nWhy, from the breakdown:\n\n", breakdown(r),
        "\n### Other load on the machine\n\n", interference(r),
    ]
    if r.get("notes"):
        parts += ["\n### Notes written after the run (kept in road.json under `notes`)\n\n",
                  "".join(f"- {note}\n" for note in r["notes"])]
    return "".join(parts)


# -- main ------------------------------------------------------------------------------------------------


def measure(plan: Plan, command: str) -> dict[str, Any]:
    started = time.monotonic()
    results: dict[str, Any] = {
        "command": command, "mode": "quick" if plan.quick else "full", "machine": machine_info(),
        "loadavg_1m_start": loadavg(), "submit_params": SUBMIT_PARAMS, "fleet_fps": FLEET_FPS,
        "capacity_clip": plan.capacity.key,
        "clips": {c.key: {"label": c.label, **clip_facts(c.path)} for c in plan.clips},
        "stages": {}, "pipelined": {}, "parallel": {}, "naive": {}, "framequeue": {},
    }
    if plan.long_clip is not None:
        results["clips"][plan.long_clip.key] = {"label": plan.long_clip.label, **clip_facts(plan.long_clip.path)}
    for clip in plan.clips:
        log(f"{clip.key}: stage CPU (alone, then {CORES} at once), RoadPipeline.run in-process, naive script")
        results["stages"][clip.key] = bench_stages(clip)
        results["pipelined"][clip.key] = bench_pipelined(clip)
        results["parallel"][clip.key] = bench_parallel(clip)
        results["naive"][clip.key] = bench_naive(clip)
    for workers, threads in plan.pools:
        results["framequeue"][f"w{workers}t{threads}"] = bench_pool(plan, workers, threads)
    if plan.long_clip is not None:
        log("memory: the 60 s and 240 s clips, each on a fresh framequeue up")
        results["memory_fresh"] = bench_memory(plan)
    results["loadavg_1m_end"] = loadavg()
    results["elapsed_s"] = time.monotonic() - started
    out: dict[str, Any] = rounded(results, 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="dashcam clip, one repeat, no 240 s clip (~4 min)")
    parser.add_argument("--update-doc", action="store_true", help="with --quick: rewrite the section anyway")
    parser.add_argument("--render", type=Path, help="re-render the section from a saved road.json; measure nothing")
    parser.add_argument("--memory-only", type=Path,
                        help="measure only the fresh-deployment memory comparison into this saved road.json")
    parser.add_argument("--doc", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    if args.memory_only is not None:
        results = json.loads(args.memory_only.read_text())
        results["memory_fresh"] = rounded(bench_memory(make_plan(False)), 4)
        args.memory_only.write_text(json.dumps(results, indent=1) + "\n")
        args.render = args.memory_only
    if args.render is not None:
        results = json.loads(args.render.read_text())
    else:
        command = "python -m bench.road --quick" if args.quick else "make bench-road"
        results = measure(make_plan(args.quick), command)
    suffix = "-quick" if results["mode"] == "quick" else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.render is None:
        (RESULTS / f"road{suffix}.json").write_text(json.dumps(results, indent=1) + "\n")
    section = render(results)
    (RESULTS / f"road{suffix}.md").write_text(section)
    if results["mode"] == "full" or args.update_doc:
        replace_section(args.doc, SECTION_TITLE, section)
        log(f"wrote {args.doc}")
    log(f"wrote {RESULTS / f'road{suffix}.json'} and road{suffix}.md")
    print(section)


if __name__ == "__main__":
    main()
