"""CPU cost of each stage of framequeue's `driver` work, each measured alone, for the 2-core ceiling.

One process, every native pool sized as framequeue sizes it (`stage_threads`: decoder, YuNet's ONNX Runtime
session, x264; FaceMesh's LiteRT interpreter on one thread, as DriverPipeline opens it), the stages run one
after another on each batch of frames, so nothing overlaps and the process CPU time (time.process_time: all
threads) of each section is that stage's cost alone:

    decode      next frame from PyAV + conversion to a BGR array (framequeue.media.decode)
    detector    YuNet letterbox into the batch + ONNX Runtime (batches of 4) + decoding and NMS
    sink        DriverSink.frame, split by the sink's own timers into
                  track   ByteTrack on the faces
                  mesh    per tracked face: the levelled crop + FaceMesh (LiteRT); the LiteRT calls alone are
                          also timed by process CPU, and the faces counted, for the cost per face
                  pose    cv2.solvePnP of the 468 points, One Euro, driver selection, off-road rule, events
                  draw    draw_driver (head box, axes, banners)
                  json    the driver.json record
    sheet       the contact-sheet thumbnail (counted with draw)
    encode      libx264 via framequeue.media.encode
    finish      timeline.png, the end of driver.json and the contact sheet, once per video (counted per frame)

Imports come first (bench.road_stages.preload: what a worker's fork server preloads). The pieces are
framequeue's own (the YuNet and FaceMesh formats, DriverSink), so this is the work a `driver` job does, minus
the cost of running the stages concurrently. `--pipelined` runs DriverPipeline.run itself in-process instead
and prints its RunResult.stats (each stage thread's CPU time and wall time).

`--detector-batches` times YuNet alone at batch 1, 2 and 4, and at a 640x384 input (one thread), on the
clip's first frames.

    python -m bench.driver_stages INPUT [--worker-threads N] [--sample-fps F] [--pipelined | --detector-batches]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from bench.common import SHARED, median
from bench.road_stages import _Model, preload, video_summary
from framequeue.media.decode import SampleClock, decode_frames
from framequeue.media.encode import VideoEncoder
from framequeue.media.frames import Frame, VideoInfo
from framequeue.media.limits import MediaLimits
from framequeue.media.probe import probe
from framequeue.media.sheet import ContactSheet
from framequeue.models.formats import get_result_format
from framequeue.models.formats.yunet import YunetFormat
from framequeue.models.onnx import create_session
from framequeue.models.predictions import Faces
from framequeue.models.repository import ModelRepository
from framequeue.models.runtimes import InferenceBackend
from framequeue.models.tflite import TfliteBackend
from framequeue.models.version import CANONICAL_FACE_FILE, ModelVersion
from framequeue.pipelines import stages
from framequeue.pipelines.base import RunContext
from framequeue.pipelines.driver.headpose import load_canonical_face
from framequeue.pipelines.driver.pipeline import DETECTOR_MIN_SCORE, OUTPUTS, DriverPipeline, DriverSink

FACE_MODEL: Final = SHARED / "models" / "yunet" / "yunet_s_640_640.onnx"
MESH_MODEL: Final = SHARED / "models" / "mediapipe" / "face_landmark.tflite"
CANONICAL_FACE: Final = SHARED / "models" / "mediapipe" / "canonical_face_model.obj"
#: the demo's submit params (framequeue/cli/demo.py): none, every default
SUBMIT_PARAMS: Final[dict[str, Any]] = {}
STAGES: Final = ("decode", "detector", "track", "mesh", "pose", "draw", "json", "encode", "finish")
#: DriverSink's timers -> the stages above
SINK_TIMERS: Final = {"track": "track_s", "mesh": "mesh_s", "pose": "pose_s", "draw": "draw_s", "json": "json_s"}


# -- the driver job's pieces, shared with bench.driver_naive ------------------------------------------------


@dataclass(frozen=True)
class DriverModels:
    """Both models registered as `framequeue models add` does, the job's validated params, and the face
    detector's pre/post-processing (the same calls DriverPipeline.run makes)."""

    faces: ModelVersion
    mesh: ModelVersion
    params: dict[str, Any]

    @classmethod
    def register(cls, models_dir: Path, sample_fps: float | None = None) -> DriverModels:
        repo = ModelRepository(models_dir)
        faces = repo.add("yunet", FACE_MODEL, "yunet", None)
        mesh = repo.add("facemesh", MESH_MODEL, "facemesh", None, canonical_face=CANONICAL_FACE)
        submit = {**SUBMIT_PARAMS, **({} if sample_fps is None else {"sample_fps": sample_fps})}
        return cls(faces, mesh, DriverPipeline().validate(submit, repo))

    def face_fns(self) -> tuple[Callable[..., Any], Callable[..., Faces]]:
        """(preprocess(image, out) -> scale, decode(outputs, scale, image_hw) -> faces)."""
        v = self.faces
        fmt = get_result_format(v.format)(v.input_size_hw, 1)
        threshold = min(DETECTOR_MIN_SCORE, self.params["face_score_threshold"])

        def decode(outputs: list[Any], scale: Any, image_hw: tuple[int, int]) -> Faces:
            faces = fmt.decode(outputs, scale, image_hw, threshold)
            assert isinstance(faces, Faces)
            return faces

        return fmt.preprocess, decode

    def sink(self, info: VideoInfo, input_path: Path, out_dir: Path, mesh: InferenceBackend) -> DriverSink:
        """The pipeline's sink writing driver.json and timeline.png into out_dir, running FaceMesh on `mesh`."""
        ctx = RunContext(input_path, out_dir, self.params, ModelRepository(out_dir / "unused"), 1,
                         on_progress=lambda _: None, stop=threading.Event())
        head = DriverPipeline()._head(self.params, ctx, info, self.faces, self.mesh)
        parts = {key: out_dir / OUTPUTS[key] for key in ("driver", "timeline")}
        points = load_canonical_face(self.mesh.path / CANONICAL_FACE_FILE)
        return DriverSink(parts, head, self.params, info, mesh, points)


class CountedMesh:
    """A FaceMesh backend that counts the faces it runs and their process CPU (meaningful only when nothing
    else runs in the process: the sequential measurement)."""

    def __init__(self, backend: InferenceBackend) -> None:
        self.backend = backend
        self.version = backend.version
        self.max_in_flight = backend.max_in_flight
        self.faces = 0
        self.calls = 0
        self.cpu_s = 0.0

    def submit(self, batch: npt.NDArray[np.float32]) -> Future[list[npt.NDArray[np.float32]]]:
        future: Future[list[npt.NDArray[np.float32]]] = Future()
        future.set_result(self.infer(batch))
        return future

    def infer(self, batch: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        t0 = time.process_time()
        try:
            return self.backend.infer(batch)
        finally:
            self.cpu_s += time.process_time() - t0
            self.faces += len(batch)
            self.calls += 1

    def close(self) -> None:
        self.backend.close()


# -- the sequential measurement ---------------------------------------------------------------------------


def split_sink(cpu_s: float, sink_stats: dict[str, float]) -> dict[str, float]:
    """The sink's process CPU split in proportion to its own per-part timers."""
    parts = {stage: sink_stats[timer] for stage, timer in SINK_TIMERS.items()}
    total = sum(parts.values()) or 1.0
    return {k: cpu_s * v / total for k, v in parts.items()}


def measure(input_path: Path, worker_threads: int = 1, sample_fps: float | None = None) -> dict[str, Any]:
    preload()
    threads = stages.stage_threads(worker_threads)
    with tempfile.TemporaryDirectory(prefix="fq-bench-driver-stages-") as tmp_name:
        tmp = Path(tmp_name)
        models = DriverModels.register(tmp / "models", sample_fps)
        p = models.params
        batch_size: int = p["batch_size"]
        detector = _Model(models.faces, threads.infer, batch_size, models.face_fns())
        mesh = CountedMesh(TfliteBackend(models.mesh, 1))  # as DriverPipeline opens it: one thread
        info = probe(input_path, MediaLimits())
        encoder = VideoEncoder(tmp / "out.mp4", info.resolution_wh, info.rate, info.time_base,
                               preset=p["encode_preset"], crf=p["crf"], threads=threads.encode)
        sink = models.sink(info, input_path, tmp, mesh)
        sheet = ContactSheet(info.frames_declared)
        clock = SampleClock(p["sample_fps"])
        max_pending = max(2 * batch_size, stages.QUEUE_FRAMES)
        cpu = dict.fromkeys(STAGES, 0.0)
        sink_cpu = sheet_cpu = 0.0
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
            results = iter(detector.run(sampled))
            t2 = time.process_time()
            for frame, s in pending:
                sink.frame(frame, (next(results),) if s else None)
            t3 = time.process_time()
            for frame, _ in pending:
                sheet.offer(frame, frame.image)
            t4 = time.process_time()
            for frame, _ in pending:
                encoder.write(frame.image, frame.pts)
            if done:
                encoder.close()
            t5 = time.process_time()
            cpu["decode"] += t1 - t0
            cpu["detector"] += t2 - t1
            sink_cpu += t3 - t2
            sheet_cpu += t4 - t3
            cpu["encode"] += t5 - t4
            frames += len(pending)
            inferred += len(sampled)
        t0 = time.process_time()
        sink.finish(video_summary(info, frames))
        sheet.save(tmp / "contact_sheet.png")
        cpu["finish"] = time.process_time() - t0
        cpu.update(split_sink(sink_cpu, sink.stats))
        cpu["draw"] += sheet_cpu
        cpu_total = time.process_time() - cpu_start
        wall = time.perf_counter() - wall_start
        summary = json.loads((tmp / OUTPUTS["driver"]).read_text())["summary"]
        mesh.close()
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
        # FaceMesh: faces run, its LiteRT calls alone, and the whole mesh stage (crop + LiteRT) per face
        "mesh_faces": mesh.faces,
        "faces_per_frame": mesh.faces / max(1, frames),
        "facemesh_cpu_s": mesh.cpu_s,
        "facemesh_ms_per_face": 1000 * mesh.cpu_s / max(1, mesh.faces),
        "mesh_ms_per_face": 1000 * cpu["mesh"] / max(1, mesh.faces),
        "sink_stats_s": dict(sink.stats),
        "process_cpu_s": cpu_total,
        "wall_s": wall,
        "summary": summary,
    }


def pipelined(input_path: Path, worker_threads: int = 1, sample_fps: float | None = None) -> dict[str, Any]:
    """DriverPipeline.run in this process, as a worker's media child runs it: its RunResult.stats."""
    preload()
    with tempfile.TemporaryDirectory(prefix="fq-bench-driver-run-") as tmp_name:
        tmp = Path(tmp_name)
        models = DriverModels.register(tmp / "models", sample_fps)
        ctx = RunContext(input_path, tmp / "out", models.params, ModelRepository(tmp / "models"), worker_threads,
                         on_progress=lambda _: None, stop=threading.Event())
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = DriverPipeline().run(ctx)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        summary = json.loads((ctx.output_dir / OUTPUTS["driver"]).read_text())["summary"]
    return {"input": str(input_path), "frames": result.frames_total, "frames_inferred": result.frames_inferred,
            "sample_fps": sample_fps, "worker_threads": worker_threads, "stats": result.stats,
            "process_cpu_s": cpu, "wall_s": wall, "fps": result.frames_total / wall, "summary": summary}


def detector_batches(input_path: Path, frames: int = 32, rounds: int = 7) -> dict[str, Any]:
    """YuNet's CPU per frame on the clip's first `frames` frames, one thread: (1) as the pipeline runs it
    (letterbox + ONNX Runtime + decoding) at batch 1, 2 and the pipeline's 4; (2) the network alone at the
    registered 640x640 and at 640 wide x 384 high (a 16:9 frame letterboxed with 24 rows of padding instead of
    280), the graph's spatial sides made symbolic (it is fully convolutional). Each set of variants takes turns
    pass after pass (drift in the machine's speed touches them alike): median of `rounds` passes each."""
    preload()
    with tempfile.TemporaryDirectory(prefix="fq-bench-driver-batches-") as tmp_name:
        models = DriverModels.register(Path(tmp_name) / "models")
        info = probe(input_path, MediaLimits())
        decoded = decode_frames(input_path, info, 1)
        images = [frame for _, frame in zip(range(frames), decoded, strict=False)]
        decoded.close()

        def pipeline_pass(batch: int) -> Callable[[], object]:
            model = _Model(models.faces, 1, batch, models.face_fns())
            return lambda: [model.run(images[i : i + batch]) for i in range(0, len(images), batch)]

        by_batch = _turns({b: pipeline_pass(b) for b in (1, 2, 4)}, rounds)
    session = create_session(_size_free(FACE_MODEL), 1)
    name = session.get_inputs()[0].name

    def network_pass(hw: tuple[int, int]) -> Callable[[], object]:
        x = np.empty((len(images), 3, *hw), np.float32)
        for i, frame in enumerate(images):
            YunetFormat(hw).preprocess(frame.image, x[i])
        return lambda: [session.run(None, {name: x[i : i + 1]}) for i in range(len(x))]

    by_size = _turns({hw: network_pass(hw) for hw in ((640, 640), (384, 640))}, rounds)

    def rows(passes: dict[Any, list[float]]) -> list[dict[str, Any]]:
        return [{"variant": list(k) if isinstance(k, tuple) else k,
                 "cpu_ms_per_frame": 1000 * median(v) / len(images),
                 "passes_ms_per_frame": [1000 * t / len(images) for t in v]} for k, v in passes.items()]

    return {"input": str(input_path), "frames": len(images), "rounds": rounds, "threads": 1,
            "batches": rows(by_batch), "input_hw": rows(by_size)}


def _turns(variants: dict[Any, Callable[[], object]], rounds: int) -> dict[Any, list[float]]:
    """Process CPU of one pass of each variant, the variants taking turns, after one warm-up pass each."""
    for run in variants.values():
        run()
    passes: dict[Any, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for k, run in variants.items():
            t0 = time.process_time()
            run()
            passes[k].append(time.process_time() - t0)
    return passes


def _size_free(model: Path) -> bytes:
    """The ONNX graph with its input's height and width and its outputs' anchor counts symbolic."""
    import onnx

    proto = onnx.load(str(model))
    dims = [proto.graph.input[0].type.tensor_type.shape.dim[k] for k in (2, 3)]
    dims += [out.type.tensor_type.shape.dim[1] for out in proto.graph.output]
    for k, dim in enumerate(dims):
        dim.ClearField("dim_value")
        dim.dim_param = f"d{k}"
    del proto.graph.value_info[:]
    return bytes(proto.SerializeToString())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path)
    parser.add_argument("--worker-threads", type=int, default=1)
    parser.add_argument("--sample-fps", type=float, default=None)
    parser.add_argument("--pipelined", action="store_true", help="run DriverPipeline.run and print its stats")
    parser.add_argument("--detector-batches", action="store_true", help="YuNet's CPU per frame at batch 1, 2, 4")
    args = parser.parse_args()
    if args.detector_batches:
        print(json.dumps(detector_batches(args.input)))
        return
    fn = pipelined if args.pipelined else measure
    print(json.dumps(fn(args.input, args.worker_threads, args.sample_fps)))


if __name__ == "__main__":
    main()
