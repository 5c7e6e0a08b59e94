"""CPU cost of each stage of framequeue's `road` work, each measured alone, for the 2-core ceiling.

One process, every native pool sized as framequeue sizes it (`stage_threads`: decoder, both ONNX Runtime
sessions, x264), the stages run one after another on each batch of frames, so nothing overlaps and the
process CPU time (time.process_time: all threads) of each section is that stage's cost alone:

    decode      next frame from PyAV + conversion to a BGR array (framequeue.media.decode)
    detector    YOLOX letterbox into the batch + ONNX Runtime (batches of 4) + decoding, NMS, duplicate merge
    lanes       LSTR resize/normalise + ONNX Runtime (frame by frame: the export has a fixed batch of 1) + curves
    sink        RoadSink.frame (ByteTrack, lane smoothing + ego lane, lead, distance / gap / TTC, events, the
                overlay, the road.json record), split into tracking + geometry, draw and JSON by the sink's
                own timers (one thread, nothing else running: its wall time is its CPU time); + contact sheet
    encode      libx264 via framequeue.media.encode
    finish      timeline.png and the end of road.json, once per video (counted per frame over the clip)

Imports come first (what a worker's fork server preloads: a job forked from it does not pay for them).

The pieces are framequeue's own (formats, the pipeline's decoding helpers, RoadSink), so this is the work a
`road` job does, minus the cost of running the stages concurrently. `--pipelined` runs RoadPipeline.run itself
in-process instead and prints its RunResult.stats (each stage thread's CPU time and wall time).

    python -m bench.road_stages INPUT [--worker-threads N] [--sample-fps F] [--pipelined]   # one JSON line
"""

from __future__ import annotations

import argparse
import importlib
import json
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from bench.common import CLASSES, MODEL, SHARED
from framequeue.media.decode import SampleClock, decode_frames
from framequeue.media.encode import VideoEncoder
from framequeue.media.frames import Frame, VideoInfo
from framequeue.media.limits import MediaLimits
from framequeue.media.probe import probe
from framequeue.media.sheet import ContactSheet
from framequeue.models.formats import get_format, get_result_format
from framequeue.models.onnx import OnnxModel
from framequeue.models.predictions import Detections, Lanes
from framequeue.models.repository import ModelRepository
from framequeue.models.version import ModelVersion
from framequeue.pipelines import stages
from framequeue.pipelines.base import RunContext
from framequeue.pipelines.road import params as road_params
from framequeue.pipelines.road.geometry import camera_for
from framequeue.pipelines.road.pipeline import (
    DETECTOR_MIN_SCORE,
    DUPLICATE_IOU,
    OUTPUTS,
    RoadPipeline,
    RoadSink,
    assumptions,
    merge_duplicates,
)
from framequeue.worker.sandbox import PRELOAD

LANE_MODEL: Final = SHARED / "models" / "lstr" / "lstr_360x640.onnx"
#: the demo's submit params (framequeue/cli/demo.py): the dashcam clip has no telematics, 27 m/s is a highway pace
SUBMIT_PARAMS: Final[dict[str, Any]] = {"speed_mps": 27, "following": {"profile": "two_second_rule"}}
STAGES: Final = ("decode", "detector", "lanes", "track_geometry", "draw", "json", "encode", "finish")


# -- the road job's pieces, shared with bench.road_naive -------------------------------------------------


@dataclass(frozen=True)
class RoadModels:
    """Both models registered as `framequeue models add` does, the job's validated params, and the pipeline's
    pre/post-processing for each model (the same calls RoadPipeline._predictors makes)."""

    detector: ModelVersion
    lanes: ModelVersion
    params: dict[str, Any]

    @classmethod
    def register(cls, models_dir: Path, sample_fps: float | None = None) -> RoadModels:
        repo = ModelRepository(models_dir)
        detector = repo.add("yolox_nano", MODEL, "yolox", CLASSES)
        lanes = repo.add("lstr", LANE_MODEL, "lstr", None)
        submit = {**SUBMIT_PARAMS, **({} if sample_fps is None else {"sample_fps": sample_fps})}
        return cls(detector, lanes, road_params.validate(submit, repo))

    def detector_fns(self) -> tuple[Callable[..., Any], Callable[..., Detections]]:
        """(preprocess(image, out) -> scale, decode(outputs, scale, image_hw) -> vehicles)."""
        v, p = self.detector, self.params
        fmt = get_format(v.format)(v.input_size_hw, len(v.classes))
        vehicles = np.asarray([v.classes.index(c) for c in p["vehicle_widths_m"]], np.int64)

        def decode(outputs: list[Any], scale: float, image_hw: tuple[int, int]) -> Detections:
            dets = fmt.decode(outputs, scale, image_hw, DETECTOR_MIN_SCORE, p["nms_iou"], vehicles)
            return merge_duplicates(dets, DUPLICATE_IOU)

        return fmt.preprocess, decode

    def lane_fns(self) -> tuple[Callable[..., Any], Callable[..., Lanes]]:
        v, threshold = self.lanes, self.params["lane_score_threshold"]
        fmt = get_result_format(v.format)(v.input_size_hw, len(v.classes))

        def decode(outputs: list[Any], scale: Any, image_hw: tuple[int, int]) -> Lanes:
            lanes: Lanes = fmt.decode(outputs, scale, image_hw, threshold)
            return lanes

        return fmt.preprocess, decode

    def sink(self, info: VideoInfo, out_dir: Path) -> RoadSink:
        """The pipeline's sink writing road.json and timeline.png into out_dir."""
        camera = camera_for(self.params["camera"], info.width, info.height)
        head = {"pipeline": RoadPipeline.name, "camera": camera.to_json(),
                "assumptions": assumptions(self.params, camera, info)}
        parts = {key: out_dir / OUTPUTS[key] for key in ("road", "timeline")}
        return RoadSink(parts, head, self.params, info, self.detector.classes)


def preload() -> None:
    """Import what a worker's fork server imports before it forks a job (matplotlib's ~0.5 s among them), so
    that import time counts neither here nor, as in a framequeue job, in the measurement."""
    for name in PRELOAD:
        importlib.import_module(name)


def video_summary(info: VideoInfo, frames: int) -> dict[str, Any]:
    return {"width": info.width, "height": info.height, "fps": float(info.rate), "frames": frames,
            "duration_s": info.duration_s}


# -- the sequential measurement ---------------------------------------------------------------------------


class _Model:
    """One model's batch buffer and its framequeue backend."""

    def __init__(self, version: ModelVersion, threads: int, batch_size: int,
                 fns: tuple[Callable[..., Any], Callable[..., Any]]) -> None:
        self.backend = OnnxModel.load(version, threads)
        self.preprocess, self.decode = fns
        self.inputs: npt.NDArray[np.float32] = np.empty((batch_size, 3, *version.input_size_hw), np.float32)

    def run(self, frames: list[Frame]) -> list[Any]:
        metas = [self.preprocess(f.image, self.inputs[i]) for i, f in enumerate(frames)]
        if not frames:
            return []
        outputs = self.backend.infer(self.inputs[: len(frames)])
        return [self.decode([out[i] for out in outputs], metas[i], f.image.shape[:2]) for i, f in enumerate(frames)]


def _split_sink(cpu_s: float, sink_stats: dict[str, float]) -> dict[str, float]:
    """The sink's process CPU split in proportion to its own per-part timers."""
    parts = {
        "track_geometry": sink_stats["track_s"] + sink_stats["lanes_s"] + sink_stats["geometry_s"],
        "draw": sink_stats["draw_s"],
        "json": sink_stats["json_s"],
    }
    total = sum(parts.values()) or 1.0
    return {k: cpu_s * v / total for k, v in parts.items()}


def measure(input_path: Path, worker_threads: int = 1, sample_fps: float | None = None) -> dict[str, Any]:
    preload()
    threads = stages.stage_threads(worker_threads)
    with tempfile.TemporaryDirectory(prefix="fq-bench-road-stages-") as tmp_name:
        tmp = Path(tmp_name)
        models = RoadModels.register(tmp / "models", sample_fps)
        batch_size: int = models.params["batch_size"]
        detector = _Model(models.detector, threads.infer, batch_size, models.detector_fns())
        lanes = _Model(models.lanes, threads.infer, batch_size, models.lane_fns())
        info = probe(input_path, MediaLimits())
        encoder = VideoEncoder(tmp / "out.mp4", info.resolution_wh, info.rate, info.time_base,
                               preset=models.params["encode_preset"], crf=models.params["crf"],
                               threads=threads.encode)
        sink = models.sink(info, tmp)
        sheet = ContactSheet(info.frames_declared)
        clock = SampleClock(models.params["sample_fps"])
        max_pending = max(2 * batch_size, stages.QUEUE_FRAMES)
        cpu = dict.fromkeys(STAGES, 0.0)
        sink_cpu = 0.0
        frames = inferred = 0
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        decoded = decode_frames(input_path, info, threads.decode)
        done = False
        while not done:
            # as the infer stage does: a batch is full with batch_size sampled frames (or max_pending frames)
            t0 = time.process_time()
            pending: list[tuple[Frame, bool]] = []
            while sum(s for _, s in pending) < batch_size and len(pending) < max_pending:
                frame = next(decoded, None)
                if frame is None:
                    done = True
                    break
                pending.append((frame, clock.take(frame.time)))
            sampled = [f for f, s in pending if s]
            t1 = time.process_time()
            dets = detector.run(sampled)
            t2 = time.process_time()
            lane_results = lanes.run(sampled)
            t3 = time.process_time()
            results = iter(zip(dets, lane_results, strict=True))
            for frame, s in pending:
                sink.frame(frame, next(results) if s else None)
                sheet.offer(frame, frame.image)
            t4 = time.process_time()
            for frame, _ in pending:
                encoder.write(frame.image, frame.pts)
            if done:
                encoder.close()
            t5 = time.process_time()
            cpu["decode"] += t1 - t0
            cpu["detector"] += t2 - t1
            cpu["lanes"] += t3 - t2
            sink_cpu += t4 - t3
            cpu["encode"] += t5 - t4
            frames += len(pending)
            inferred += len(sampled)
        t0 = time.process_time()
        sink.finish(video_summary(info, frames))
        sheet.save(tmp / "contact_sheet.png")
        cpu["finish"] = time.process_time() - t0
        cpu.update(_split_sink(sink_cpu, sink.stats))
        cpu_total = time.process_time() - cpu_start
        wall = time.perf_counter() - wall_start
        summary = json.loads((tmp / OUTPUTS["road"]).read_text())["summary"]
    per_frame_ms = {k: 1000 * v / frames for k, v in cpu.items()}
    return {
        "input": str(input_path),
        "frames": frames,
        "frames_inferred": inferred,
        "sample_fps": sample_fps,
        "stage_threads": threads._asdict(),
        "cpu_s": cpu,
        "cpu_ms_per_frame": per_frame_ms,
        "sum_ms_per_frame": sum(per_frame_ms.values()),
        "sink_stats_s": dict(sink.stats),
        "process_cpu_s": cpu_total,
        "wall_s": wall,
        "summary": summary,
    }


def pipelined(input_path: Path, worker_threads: int = 1, sample_fps: float | None = None) -> dict[str, Any]:
    """RoadPipeline.run in this process, as a worker's media child runs it: its RunResult.stats."""
    preload()
    with tempfile.TemporaryDirectory(prefix="fq-bench-road-run-") as tmp_name:
        tmp = Path(tmp_name)
        models = RoadModels.register(tmp / "models", sample_fps)
        ctx = RunContext(input_path, tmp / "out", models.params, ModelRepository(tmp / "models"), worker_threads,
                         on_progress=lambda _: None, stop=threading.Event())
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = RoadPipeline().run(ctx)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        summary = json.loads((ctx.output_dir / OUTPUTS["road"]).read_text())["summary"]
    return {"input": str(input_path), "frames": result.frames_total, "frames_inferred": result.frames_inferred,
            "sample_fps": sample_fps, "worker_threads": worker_threads, "stats": result.stats,
            "process_cpu_s": cpu, "wall_s": wall, "fps": result.frames_total / wall, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path)
    parser.add_argument("--worker-threads", type=int, default=1)
    parser.add_argument("--sample-fps", type=float, default=None)
    parser.add_argument("--pipelined", action="store_true", help="run RoadPipeline.run and print its stats")
    args = parser.parse_args()
    fn = pipelined if args.pipelined else measure
    print(json.dumps(fn(args.input, args.worker_threads, args.sample_fps)))


if __name__ == "__main__":
    main()
