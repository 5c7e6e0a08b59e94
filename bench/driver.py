"""The `driver` pipeline benchmark: `make bench-driver` (full, ~15 min) or `python -m bench.driver --quick` (~3 min).

In one run, for the three head-pose GIFs (480x270, 12.5 fps; 23, 62 and 56 frames, the last with two faces)
and the 60 s 1280x720 30 fps clip made from them (bench/driver_clips.py: upscaled 480x270 footage), with the
demo's params (none: every default):
  (1) framequeue end to end: a real `framequeue up` with YuNet and FaceMesh registered, one `driver` job at a
      time submitted over HTTP (submit -> succeeded, server clock), median of the repeats
  (2) each stage's CPU per frame, alone and one after another in-process (bench/driver_stages.py), FaceMesh
      also per face, and the 2-core ceiling = 2 cores / their sum; DriverPipeline.run in-process for its
      per-thread CPU; and two sequential stage processes at once (sharing the cores without threads)
  (3) several copies queued at once on the default pool (FQ_WORKERS=2 FQ_WORKER_THREADS=1), aggregate
      frames/s as a share of that ceiling
  (4) the naive sequential script (bench/driver_naive.py); ratio framequeue / naive
  (5) peak RSS of the worker process tree for the 60 s clip: one job on a fresh `framequeue up`
  (6) YuNet alone (one thread): CPU per frame at batch 1, 2 and the pipeline's 4, and the network at its
      registered 640x640 input vs 640x384 (what a 16:9 frame needs), as evidence for what limits (2)
Raw results go to bench/results/driver.json and the Markdown section to bench/results/driver.md; a full run
also replaces the "## The driver pipeline (head pose, distraction)" section of BENCHMARKS.md. --quick (the
GIFs only, one repeat, no 60 s clip) writes bench/results/driver-quick.* and leaves BENCHMARKS.md alone unless
--update-doc. `--render FILE` rewrites the section from a saved driver.json without measuring.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, cast

from bench import driver_clips
from bench.common import CORES, PYTHON, RESULTS, ROOT, loadavg, machine_info, median, replace_section, rounded
from bench.driver_stages import CANONICAL_FACE, FACE_MODEL, MESH_MODEL, SUBMIT_PARAMS
from bench.road import (
    FOREIGN_MARK,
    RoadDeployment,
    aggregate,
    bench_naive,
    bench_parallel,
    f,
    interference,
    job_facts,
    mark,
    pct_over,
    run_json,
    table,
    verdict,
)
from bench.run import Clip, clip_facts, log, measured
from bench.service import Deployment, JobRun

SECTION_TITLE: Final = "## The driver pipeline (head pose, distraction)"
#: the issue's goal: share of the 2-core ceiling with several videos queued
GOAL_CEILING: Final = 0.90
#: not a goal of this issue: the road benchmark's goal for framequeue / naive, shown for comparison
ROAD_NAIVE_GOAL: Final = 1.3
#: clip key -> label
LABELS: Final = {
    "female": "head-pose female GIF (480x270, 12.5 fps, 23 frames, one face)",
    "male": "head-pose male GIF (480x270, 12.5 fps, 62 frames, one face)",
    "pair": "head-pose female-and-male GIF (480x270, 12.5 fps, 56 frames, two faces)",
    "synth60": "upscaled head-pose 60 s (1280x720 from 480x270 GIFs, 30 fps, 1800 frames)",
}


@dataclass(frozen=True)
class Plan:
    quick: bool
    clips: tuple[Clip, ...]
    #: the clip whose peak memory is measured on a fresh deployment; None in --quick
    memory_clip: Clip | None = None


def make_plan(quick: bool) -> Plan:
    repeats, copies, tries = (1, 4, 1) if quick else (3, 6, 3)
    gifs = tuple(Clip(key, LABELS[key], path, repeats, copies, tries) for key, path in driver_clips.GIFS.items())
    if quick:
        return Plan(quick=True, clips=gifs)
    log("the 60 s clip (made once, cached in bench/results/clips/)")
    synth60 = Clip("synth60", LABELS["synth60"], driver_clips.make_clip(60), 1, 4, 2)
    return Plan(quick=False, clips=(*gifs, synth60), memory_clip=synth60)


class DriverDeployment(Deployment):
    """bench.service's `framequeue up` with YuNet and FaceMesh registered too, submitting `driver` jobs."""

    def start(self) -> None:
        for args in (["yunet", str(FACE_MODEL), "--format", "yunet"],
                     ["facemesh", str(MESH_MODEL), "--format", "facemesh", "--canonical-face", str(CANONICAL_FACE)]):
            subprocess.run([PYTHON, "-m", "framequeue", "models", "add", *args], env=self.env, check=True,
                           capture_output=True, timeout=300)
        super().start()

    def submit(self, clip: str, path: Path, sample_fps: float | None = None) -> JobRun:
        key = self.upload(path)
        params = {**SUBMIT_PARAMS, **({} if sample_fps is None else {"sample_fps": sample_fps})}
        t = time.time()
        record = self.client.submit({"pipeline": "driver", "input": {"key": key}, "params": params})
        return JobRun(record["id"], clip, t, record)


# -- in-process measurements (separate processes) -----------------------------------------------------


def bench_stages(clip: Clip) -> dict[str, Any]:
    """Stage CPU costs, median over the repeats by their sum."""
    runs = [measured(lambda: run_json("driver_stages", clip), tries=clip.tries) for _ in range(clip.repeats)]
    mid = sorted(runs, key=lambda run: run["sum_ms_per_frame"])[len(runs) // 2]
    keep = ("frames", "stage_threads", "cpu_ms_per_frame", "sum_ms_per_frame", "summary", "mesh_faces",
            "faces_per_frame", "facemesh_ms_per_face", "mesh_ms_per_face")
    result = {k: mid[k] for k in keep}
    result["runs"] = runs
    result["ceiling_fps"] = 1000.0 * CORES / result["sum_ms_per_frame"]
    log(f"  stages {clip.key}: {result['sum_ms_per_frame']:.1f} ms/frame -> ceiling {result['ceiling_fps']:.1f} fps")
    return result


def bench_pipelined(clip: Clip) -> dict[str, Any]:
    result = measured(lambda: run_json("driver_stages", clip, "--pipelined"), tries=clip.tries)
    log(f"  DriverPipeline.run in-process {clip.key}: {result['fps']:.1f} fps")
    return result


def bench_detector_batches(clip: Clip) -> dict[str, Any]:
    result = measured(lambda: run_json("driver_stages", clip, "--detector-batches"), tries=clip.tries)
    log(f"  YuNet {clip.key}: " + ", ".join(f"batch {b['variant']} {b['cpu_ms_per_frame']:.1f} ms"
                                             for b in result["batches"])
        + ", ".join(f"; network at {hw['variant']} {hw['cpu_ms_per_frame']:.1f} ms" for hw in result["input_hw"]))
    return result


# -- framequeue up ---------------------------------------------------------------------------------------


def driver_output(dep: Deployment, run: JobRun) -> dict[str, Any]:
    """The job's driver.json summary and its count of inferred frames (downloaded after the measurement)."""
    with tempfile.TemporaryDirectory(prefix="fq-bench-dl-") as tmp:
        doc = json.loads(dep.client.download(run.id, "driver", Path(tmp)).read_text())
    return {"summary": doc["summary"], "frames_inferred": sum(bool(fr["inferred"]) for fr in doc["frames"])}


def single_jobs(dep: DriverDeployment, clip: Clip, repeats: int) -> dict[str, Any]:
    assert dep.sampler is not None
    sampler = dep.sampler
    runs, memory, jobs = [], [], []
    for _ in range(repeats):
        def one() -> dict[str, Any]:
            sampler.begin()
            cpu0 = sampler.cpu_s()
            run = dep.submit(clip.key, clip.path)
            dep.wait([run])
            tree_cpu = sampler.cpu_s() - cpu0
            memory.append(asdict(sampler.end()))
            jobs.append(run)
            return {"job": job_facts(run), "fps": run.frames / max(1e-9, run.finished - run.created),
                    "tree_cpu_ms_per_frame": 1000 * tree_cpu / max(1, run.frames)}

        runs.append(measured(one, sampler.cpu_s, tries=clip.tries))
        runs[-1].update(driver_output(dep, jobs[-1]))
        log(f"  framequeue {dep.name} {clip.key}: {runs[-1]['fps']:.1f} fps end to end")
    return {"runs": runs, "fps": median([r["fps"] for r in runs]),
            "tree_cpu_ms_per_frame": median([r["tree_cpu_ms_per_frame"] for r in runs]),
            "e2e_s": median([r["job"]["e2e_s"] for r in runs]),
            "memory": max(memory, key=lambda m: m["worker_tree_kib"])}


def bench_pool(plan: Plan) -> dict[str, Any]:
    """The default pool (FQ_WORKERS=2, FQ_WORKER_THREADS=1): single jobs, then several copies queued."""
    log("framequeue up, FQ_WORKERS=2 FQ_WORKER_THREADS=1 (default)")
    dep = DriverDeployment("driver-w2t1", 2, 1)
    out: dict[str, Any] = {"workers": 2, "worker_threads": 1, "single": {}, "aggregate": {}}
    warmup = driver_clips.GIFS["female"]
    try:
        dep.start()
        # each worker's first job also starts its fork server: one warm-up job per worker, queued together
        dep.wait([dep.submit("warmup", warmup) for _ in range(2)])
        for clip in plan.clips:
            out["single"][clip.key] = single_jobs(dep, clip, clip.repeats)
        for clip in plan.clips:
            # bench.road.aggregate needs only Deployment's methods and a `driver`-aware submit
            out["aggregate"][clip.key] = aggregate(cast(RoadDeployment, dep), clip, clip.copies)
    finally:
        dep.stop()
    return out


def bench_memory(clip: Clip) -> dict[str, Any]:
    """Peak RSS of one job of `clip` as the first and only job of a fresh one-worker `framequeue up` (a warm
    media child keeps memory from job to job: see the road section's notes)."""
    dep = DriverDeployment(f"driver-mem-{clip.key}", 1, 1)
    try:
        dep.start()
        out = single_jobs(dep, clip, 1)
    finally:
        dep.stop()
    log(f"  fresh deployment {clip.key}: peak worker tree {out['memory']['worker_tree_kib'] / 1024:.0f} MiB")
    return out


# -- the Markdown section ----------------------------------------------------------------------------------

#: stage columns of driver_stages (ms CPU per frame), with their headings
STAGE_HEADS: Final = {"decode": "decode → BGR", "detector": "face detector (YuNet 640, batch 4)",
                      "track": "ByteTrack", "mesh": "FaceMesh (crop + LiteRT), all faces",
                      "pose": "PnP + One Euro + rules", "draw": "draw + sheet", "json": "JSON record",
                      "encode": "H.264 encode", "finish": "timeline.png (once, per frame)"}


def naive_ratio(r: dict[str, Any], key: str) -> float:
    ratio: float = r["framequeue"]["single"][key]["fps"] / r["naive"][key]["fps"]
    return ratio


def ceiling_share(r: dict[str, Any], key: str) -> float:
    share: float = r["framequeue"]["aggregate"][key]["fps"] / r["stages"][key]["ceiling_fps"]
    return share


def per_clip(r: dict[str, Any], key: str) -> str:
    fq, st, naive, pl = r["framequeue"], r["stages"][key], r["naive"][key], r["pipelined"][key]
    ceiling, frames = st["ceiling_fps"], r["clips"][key]["frames"]

    def row(name: str, fps: float, cpu_ms: float, runs: int, mk: str) -> list[str]:
        return [name, f(fps) + mk, f(cpu_ms), f"**{fps / naive['fps']:.2f}x**", f"{100 * fps / ceiling:.0f} %",
                str(runs)]

    single, agg, par = fq["single"][key], fq["aggregate"][key], r["parallel"][key]
    rows = [
        row("framequeue up, one job (default pool)", single["fps"], single["tree_cpu_ms_per_frame"],
            len(single["runs"]), mark(*single["runs"])),
        row(f"framequeue up, {agg['copies']} copies queued (default pool)", agg["fps"], agg["cpu_ms_per_frame"], 1,
            mark(agg)),
        row("`DriverPipeline.run` in-process, one job (no HTTP, no worker)", pl["fps"],
            1000 * pl["process_cpu_s"] / frames, 1, mark(pl)),
        row(f"{par['processes']} sequential `bench.driver_stages` processes at once (no threads in a job)",
            par["fps"], par["sum_ms_per_frame"], 1, mark(par)),
        row("naive sequential script (`bench/driver_naive.py`)", naive["fps"], 1000 * naive["cpu_s"] / frames,
            len(naive["runs"]), mark(*naive["runs"])),
        row("2-core ceiling (stage CPU sum / 2, below)", ceiling, st["sum_ms_per_frame"], len(st["runs"]),
            mark(*st["runs"])),
    ]
    sums = [single["runs"][0]["summary"], naive["runs"][0]["summary"], st["summary"]]

    def each(fmt: Callable[[dict[str, Any]], str]) -> str:
        return " / ".join(fmt(s) for s in sums)

    check = (f"Same work (framequeue / naive / stages): face tracks {each(lambda s: str(s['tracks']))}, driver "
             f"visible on {each(lambda s: format(100 * s['share_driver_visible'], '.0f'))} % of frames, "
             f"off road {each(lambda s: format(s['off_road_s'], 'g'))} s, events "
             f"{each(lambda s: str(sum(s['events'].values())))}; {st['faces_per_frame']:.2f} faces meshed a frame. "
             f"One job end to end took {single['e2e_s']:.2f} s (submit → succeeded).\n")
    return (f"\n**{r['clips'][key]['label']}**\n\n"
            + table(["", "frames/s", "CPU ms/frame", "vs naive", "share of ceiling", "runs"], rows) + "\n" + check)


def stage_table(r: dict[str, Any]) -> str:
    rows = []
    for key, st in r["stages"].items():
        ms = st["cpu_ms_per_frame"]
        sums = [run["sum_ms_per_frame"] for run in st["runs"]]
        rows.append([r["clips"][key]["label"]] + [f(ms[k], 2) for k in STAGE_HEADS]
                    + [f(st["sum_ms_per_frame"], 1) + mark(*st["runs"]), f"{min(sums):.1f}–{max(sums):.1f}",
                       f(ms["draw"] + ms["json"] + ms["encode"], 1), f(st["ceiling_fps"])])
    head = ["clip", *STAGE_HEADS.values(), "sum (median)", "sum range", "render + encode", "ceiling frames/s"]
    return table(head, rows)


def mesh_table(r: dict[str, Any]) -> str:
    rows = []
    for key, st in r["stages"].items():
        per_frame = st["cpu_ms_per_frame"]["mesh"]
        rows.append([r["clips"][key]["label"], str(st["mesh_faces"]), f(st["faces_per_frame"], 2),
                     f(st["facemesh_ms_per_face"], 2), f(st["mesh_ms_per_face"] - st["facemesh_ms_per_face"], 2),
                     f(st["mesh_ms_per_face"], 2), f(per_frame, 2),
                     f"{100 * per_frame / st['sum_ms_per_frame']:.0f} %"])
    head = ["clip", "faces meshed", "faces a frame", "LiteRT ms/face", "crop + bookkeeping ms/face",
            "FaceMesh ms/face", "FaceMesh ms/frame", "share of the sum"]
    return table(head, rows)


def thread_table(r: dict[str, Any]) -> str:
    rows = []
    for key, pl in r["pipelined"].items():
        s, frames = pl["stats"], pl["frames"]
        wall = s["wall_s"]
        cells = [f"{f(1000 * s[name] / frames, 1)} ({100 * s[name] / wall:.0f} %)"
                 for name in ("decode_cpu_s", "infer_cpu_s", "output_cpu_s")]
        rows.append([r["clips"][key]["label"], *cells, f(1000 * pl["process_cpu_s"] / frames, 1),
                     f(1000 * wall / frames, 1), f(pl["process_cpu_s"] / pl["wall_s"], 2), f(pl["fps"])])
    head = ["clip", "decode thread", "infer thread (letterbox + YuNet + decoding)",
            "output thread (sink with FaceMesh, sheet, encode)", "process CPU", "wall", "cores busy", "frames/s"]
    return table(head, rows)


def aggregate_table(r: dict[str, Any]) -> str:
    rows = []
    for key, agg in r["framequeue"]["aggregate"].items():
        w = agg["window"]
        rows.append([r["clips"][key]["label"], str(agg["copies"]), str(agg["frames"]), f(agg["wall_s"]),
                     f(agg["fps"]) + mark(agg), f"**{100 * ceiling_share(r, key):.0f} %**",
                     f(agg["cpu_ms_per_frame"]), f(w["busy_cores"], 2), f(w["foreign_cores"], 2)])
    head = ["clip", "copies", "frames", "wall s", "frames/s", "% of ceiling", "CPU ms/frame", "busy cores",
            "foreign cores"]
    return table(head, rows)


def memory_table(r: dict[str, Any]) -> str:
    head = ["one job of", "peak worker tree MiB", "peak media child MiB", "samples"]

    def rows(single: dict[str, Any]) -> list[list[str]]:
        return [[r["clips"][key]["label"], f(s["memory"]["worker_tree_kib"] / 1024, 0),
                 f(s["memory"]["media_child_kib"] / 1024, 0), str(s["memory"]["samples"])] for key, s in single.items()]

    out = "On the default pool, after the jobs before it:\n\n" + table(head, rows(r["framequeue"]["single"]))
    if r.get("memory_fresh"):
        out += ("\nAs the first and only job of a fresh one-worker `framequeue up` (a warm media child keeps memory "
                "from job to job, see the road section's notes):\n\n" + table(head, rows(r["memory_fresh"])))
    return out


def batch_table(r: dict[str, Any]) -> str:
    d = r["detector_batches"]

    def rows(variants: list[dict[str, Any]], name: Callable[[Any], str]) -> list[list[str]]:
        first = variants[0]["cpu_ms_per_frame"]
        return [[name(v["variant"]), f(v["cpu_ms_per_frame"], 2), pct_over(v["cpu_ms_per_frame"], first),
                 f"{min(v['passes_ms_per_frame']):.1f}–{max(v['passes_ms_per_frame']):.1f}"] for v in variants]

    head = ["CPU ms/frame", "vs the first row", "range over the passes"]
    return (f"YuNet alone on one thread, on the first {d['frames']} frames of the {d['clip']} clip, the variants of "
            f"each table taking turns, median of {d['rounds']} passes each (`bench/driver_stages.py "
            "--detector-batches`). As the pipeline runs it (letterbox + ONNX Runtime + decoding), by batch size:\n\n"
            + table(["batch", *head], rows(d["batches"], str))
            + "\nThe network alone at batch 1, at the registered 640x640 input and at 640x384 (the same graph with "
            "its height and width made symbolic: YuNet is fully convolutional; a 16:9 frame letterboxed into "
            "640x640 is 44 % black padding, into 640x384 6 %):\n\n"
            + table(["input (w x h)", *head], rows(d["input_hw"], lambda hw: f"{hw[1]}x{hw[0]}")))


def goals(r: dict[str, Any]) -> str:
    lines = []
    for key in r["stages"]:
        share, ratio = ceiling_share(r, key), naive_ratio(r, key)
        lines.append(f"- {key}: several queued at **{100 * share:.0f} %** of the ceiling (goal ≥ "
                     f"{100 * GOAL_CEILING:.0f} %: {verdict(share >= GOAL_CEILING)}); one job **{ratio:.2f}x** the "
                     f"naive script (no goal set; the road benchmark's was ≥ {ROAD_NAIVE_GOAL}x).\n")
    for key, mem in (r.get("memory_fresh") or {}).items():
        lines.append(f"- memory: one {key} job on a fresh deployment peaks at "
                     f"**{mem['memory']['worker_tree_kib'] / 1024:.0f} MiB** for the worker tree "
                     f"({mem['memory']['media_child_kib'] / 1024:.0f} MiB the media child; no goal set).\n")
    return "".join(lines)


def breakdown(r: dict[str, Any]) -> str:
    """Why the numbers are what they are, from the measurements."""
    out = []
    for key, st in r["stages"].items():
        ms, total = st["cpu_ms_per_frame"], st["sum_ms_per_frame"]
        pl, par, frames = r["pipelined"][key], r["parallel"][key], r["clips"][key]["frames"]
        agg = r["framequeue"]["aggregate"][key]
        s = pl["stats"]
        threads = {"output": s["output_cpu_s"], "infer": s["infer_cpu_s"], "decode": s["decode_cpu_s"]}
        busiest = max(threads, key=lambda k: threads[k])
        busy_share = threads[busiest] / s["wall_s"]
        limit = (f"the {busiest} thread is the bottleneck ({100 * busy_share:.0f} % of the wall time)"
                 if busy_share >= 0.9 else
                 f"no thread is saturated (busiest: {busiest}, {100 * busy_share:.0f} % of the wall time)")
        pl_ms = 1000 * pl["process_cpu_s"] / frames
        naive_ms = 1000 * r["naive"][key]["cpu_s"] / frames
        own = agg["window"]["own_cores"]
        single = r["framequeue"]["single"][key]
        job_extra_s = (single["tree_cpu_ms_per_frame"] - total) * frames / 1000
        out.append(
            f"- **{key}**: of {total:.1f} ms CPU a frame, YuNet takes {ms['detector']:.1f} ms "
            f"({100 * ms['detector'] / total:.0f} %), FaceMesh {ms['mesh']:.1f} ({100 * ms['mesh'] / total:.0f} %; "
            f"{st['faces_per_frame']:.2f} faces × {st['mesh_ms_per_face']:.2f} ms), H.264 encoding "
            f"{ms['encode']:.1f} ({100 * ms['encode'] / total:.0f} %), decode {ms['decode']:.1f}, pose + rules "
            f"{ms['pose']:.1f}, tracking {ms['track']:.1f}, drawing {ms['draw']:.1f}, JSON {ms['json']:.1f}, "
            f"timeline.png {ms['finish']:.1f} ms. One job in-process runs at {pl['fps']:.1f} frames/s on "
            f"{pl['process_cpu_s'] / pl['wall_s']:.2f} busy cores; {limit}; its CPU per frame is {pl_ms:.1f} ms "
            f"({pct_over(pl_ms, total)} over the stages alone). {agg['copies']} queued jobs cost "
            f"{agg['cpu_ms_per_frame']:.1f} ms a frame for the whole `framequeue up` tree "
            f"({pct_over(agg['cpu_ms_per_frame'], total)}) and kept {own:.2f} cores busy; {par['processes']} "
            f"sequential processes side by side cost {par['sum_ms_per_frame']:.1f} ms "
            f"({pct_over(par['sum_ms_per_frame'], total)}) and reach {100 * par['fps'] / st['ceiling_fps']:.0f} % of "
            f"the ceiling. The naive script spends {naive_ms:.1f} ms a frame ({naive_ms / total:.1f}x the stages). "
            f"One job through `framequeue up` costs {single['tree_cpu_ms_per_frame']:.1f} ms a frame for the whole "
            f"tree: {job_extra_s:.2f} s of CPU a job beyond the stages' sum, {single['e2e_s']:.2f} s end to end "
            f"against {frames / pl['fps']:.2f} s for `DriverPipeline.run` in-process.\n")
    return "".join(out)


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    suffix = "-quick" if r["mode"] == "quick" else ""
    parts = [
        f"{SECTION_TITLE}\n\n",
        "```bash\nmake bench-driver                    # full run, ~15 min on a quiet machine; rewrites this section\n"
        "python -m bench.driver --quick       # the GIFs only, one repeat, ~3 min: bench/results/driver-quick.*\n"
        "```\n\n",
        f"Command: `{r['command']}` ({r['mode']} run, {r['elapsed_s'] / 60:.1f} min), {m['date_utc']}; raw results "
        f"in `bench/results/driver{suffix}.json`. Job params: `{json.dumps(r['submit_params'])}` (the demo's: "
        "every default, so YuNet and FaceMesh run on every frame, libx264 `veryfast` CRF 23).\n\n",
        table(["nproc", "CPU", "SIMD", "RAM", "onnxruntime", "av (PyAV)", "opencv", "numpy"],
              [[str(m["nproc"]), m["cpu_model"], ", ".join(m["cpu_flags"]), f"{m['memory_gib']} GiB",
                m["onnxruntime"], m["av"], m["opencv-python-headless"], m["numpy"]]]),
        "\nClips: the three head-pose GIFs as they are, and a 60 s 1280x720 30 fps H.264 clip made from them "
        "(`bench/driver_clips.py`): **upscaled 480x270 footage**, each GIF played forwards then backwards, the "
        "three in turn, looped and resampled by time from 12.5 to 30 fps, encoded veryfast CRF 20 GOP 60; 40 % of "
        "its frames hold two faces. Upscaled frames are softer than a native 720p camera, so decode and encode are "
        "if anything a little cheaper than on real 720p footage; YuNet (letterboxed to 640x640) and FaceMesh (a "
        "192x192 crop) cost the same at any frame size. Each return of a GIF after a cut starts new face tracks, "
        "so the driver (the track with the most face-seconds) is visible on only part of this clip; the per-face "
        "work is the same either way.\n\n"
        "What is measured: **framequeue up** = a real `framequeue up` in a temp `FQ_HOME` with both models added "
        "(`framequeue models add yunet …/yunet_s_640_640.onnx --format yunet`, `framequeue models add facemesh "
        "…/face_landmark.tflite --format facemesh --canonical-face …/canonical_face_model.obj`), the clip uploaded "
        "once, `driver` jobs submitted over HTTP, frames / (`created_at` → `finished_at`); every worker first runs "
        "a warm-up job. Single jobs: median of the repeats, CPU = the whole `framequeue up` tree. **Stages** "
        "(`bench/driver_stages.py`): framequeue's own code with its `stage_threads` (one thread per native pool; "
        "FaceMesh's LiteRT on one thread, as the pipeline opens it), each stage run alone one after another on "
        "each batch of 4 frames and timed by process CPU; the sink's CPU is split by its own timers, and the "
        "LiteRT calls are timed by process CPU and their faces counted. Ceiling = 2 cores / sum. "
        "**DriverPipeline.run in-process**: the pipeline itself in one process, for its per-thread CPU "
        "(`RunResult.stats`). **Naive** (`bench/driver_naive.py`): decode → YuNet (ONNX Runtime default session, "
        "batch 1) → framequeue's `DriverSink` (ByteTrack, FaceMesh in LiteRT's default interpreter, solvePnP, One "
        "Euro, selection, rules, `draw_driver`, JSON) → encode, frame by frame in one thread of control with every "
        f"library's default threading. † marks a measurement during which other work took more than {FOREIGN_MARK} "
        "cores.\n",
        "\n### Throughput per clip\n",
    ]
    parts += [per_clip(r, key) for key in r["stages"]]
    parts += [
        "\n### CPU per frame of each stage, alone (ms; `bench/driver_stages.py`)\n\n", stage_table(r),
        "\n### FaceMesh per face and per frame\n\n", mesh_table(r),
        "\n### One job's threads (`DriverPipeline.run` in-process): CPU ms per frame (share of the wall time)\n\n",
        thread_table(r),
        "\n### Several videos queued: aggregate throughput vs the ceiling (default pool: FQ_WORKERS=2, "
        "FQ_WORKER_THREADS=1)\n\n"
        "All copies submitted at once; aggregate = total frames / (first `created_at` → last `finished_at`); CPU "
        "ms/frame = the benchmark's own CPU (the `framequeue up` tree and the polling client) / frames.\n\n",
        aggregate_table(r),
        "\n### Memory: peak RSS while one job runs\n\n"
        "VmRSS from /proc every 100 ms; worker tree = worker + fork server + the job's media child (summed).\n\n",
        memory_table(r),
        "\n### The face detector's batch size\n\n", batch_table(r),
        "\n### Goals\n\n", goals(r),
        "\nWhy, from the breakdown:\n\n", breakdown(r),
        "\n### Other load on the machine\n\n", interference(r),
    ]
    if r.get("notes"):
        parts += ["\n### Notes written after the run (kept in driver.json under `notes`)\n\n",
                  "".join(f"- {note}\n" for note in r["notes"])]
    return "".join(parts)


# -- main ------------------------------------------------------------------------------------------------


def measure(plan: Plan, command: str) -> dict[str, Any]:
    started = time.monotonic()
    results: dict[str, Any] = {
        "command": command, "mode": "quick" if plan.quick else "full", "machine": machine_info(),
        "loadavg_1m_start": loadavg(), "submit_params": SUBMIT_PARAMS,
        "clips": {c.key: {"label": c.label, **clip_facts(c.path)} for c in plan.clips},
        "stages": {}, "pipelined": {}, "parallel": {}, "naive": {},
    }
    for clip in plan.clips:
        log(f"{clip.key}: stage CPU (alone, then {CORES} at once), DriverPipeline.run in-process, naive script")
        results["stages"][clip.key] = bench_stages(clip)
        results["pipelined"][clip.key] = bench_pipelined(clip)
        results["parallel"][clip.key] = bench_parallel(clip, "driver_stages")
        results["naive"][clip.key] = bench_naive(clip, "driver_naive")
    batch_clip = plan.memory_clip or plan.clips[-1]
    results["detector_batches"] = {"clip": batch_clip.key, **bench_detector_batches(batch_clip)}
    results["framequeue"] = bench_pool(plan)
    if plan.memory_clip is not None:
        log(f"memory: {plan.memory_clip.key}, one job on a fresh framequeue up")
        results["memory_fresh"] = {plan.memory_clip.key: bench_memory(plan.memory_clip)}
    results["loadavg_1m_end"] = loadavg()
    results["elapsed_s"] = time.monotonic() - started
    out: dict[str, Any] = rounded(results, 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the GIFs only, one repeat, no 60 s clip (~3 min)")
    parser.add_argument("--update-doc", action="store_true", help="with --quick: rewrite the section anyway")
    parser.add_argument("--render", type=Path, help="re-render the section from a saved driver.json; measure nothing")
    parser.add_argument("--doc", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    if args.render is not None:
        results = json.loads(args.render.read_text())
    else:
        command = "python -m bench.driver --quick" if args.quick else "make bench-driver"
        results = measure(make_plan(args.quick), command)
    suffix = "-quick" if results["mode"] == "quick" else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.render is None:
        (RESULTS / f"driver{suffix}.json").write_text(json.dumps(results, indent=1) + "\n")
    section = render(results)
    (RESULTS / f"driver{suffix}.md").write_text(section)
    if results["mode"] == "full" or args.update_doc:
        replace_section(args.doc, SECTION_TITLE, section)
        log(f"wrote {args.doc}")
    log(f"wrote {RESULTS / f'driver{suffix}.json'} and driver{suffix}.md")
    print(section)


if __name__ == "__main__":
    main()
