"""The naive baseline for the `driver` work: one frame at a time, one thread of control.

decode -> YuNet (batch of 1) -> per frame: ByteTrack, FaceMesh on each tracked face, solvePnP + One Euro,
driver selection, off-road rule, events, overlay, driver.json record -> encode, frame after frame, with each
library's default threading: ONNX Runtime's default session options for YuNet (its own intra-op pool,
spinning on; the model file as shipped, batch 1), LiteRT's default interpreter for FaceMesh (`num_threads`
left to LiteRT), PyAV's default decoder and encoder threading, OpenCV's default. Same model files, params (the
demo's: every default), thresholds, encoder preset and CRF as framequeue's `driver` pipeline, and framequeue's
own pure modules (the YuNet and FaceMesh formats, and its DriverSink: the tracker, the crop, the head pose,
the filters, the rules, draw_driver, the JSON record) are reused, so that both do the same work and the
comparison is about execution (pipelining, batching, thread sizing). Like framequeue it also writes the
contact sheet and timeline.png. Timed from model load to the last file written (imports excluded).

    python -m bench.driver_naive INPUT OUTPUT_DIR        # prints one JSON line with timings
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from bench.driver_stages import FACE_MODEL, MESH_MODEL, DriverModels
from bench.road_stages import preload, video_summary
from framequeue.media.frames import Frame
from framequeue.media.limits import MediaLimits
from framequeue.media.probe import probe
from framequeue.media.sheet import ContactSheet
from framequeue.models.version import ModelVersion

STAGES = ("decode_s", "detector_s", "sink_s", "encode_s")


class DefaultLitert:
    """FaceMesh in LiteRT's default interpreter, one face after another (the graph takes a batch of 1)."""

    max_in_flight = 1

    def __init__(self, version: ModelVersion) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.version = version
        self.interpreter = Interpreter(model_path=str(MESH_MODEL))  # default threading
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.outputs = [o["index"] for o in self.interpreter.get_output_details()]

    def infer(self, batch: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        runs = []
        for row in batch:
            self.interpreter.set_tensor(self.input, row[None])
            self.interpreter.invoke()
            runs.append([np.array(self.interpreter.get_tensor(i)) for i in self.outputs])
        return [np.concatenate([r[k] for r in runs]) for k in range(len(self.outputs))]

    def submit(self, batch: npt.NDArray[np.float32]) -> Future[list[npt.NDArray[np.float32]]]:
        future: Future[list[npt.NDArray[np.float32]]] = Future()
        future.set_result(self.infer(batch))
        return future

    def close(self) -> None:
        pass


def run(input_path: Path, out_dir: Path) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    preload()  # imports are not timed (matplotlib's, for the timeline, among them), as in bench/naive.py
    import ai_edge_litert.interpreter  # noqa: F401  (nor is LiteRT's)

    with tempfile.TemporaryDirectory(prefix="fq-bench-driver-naive-") as tmp:
        # for the params, the formats and the stored canonical face only: not timed
        return timed(DriverModels.register(Path(tmp) / "models"), input_path, out_dir)


def timed(models: DriverModels, input_path: Path, out_dir: Path) -> dict[str, Any]:
    p = models.params
    info = probe(input_path, MediaLimits())
    started = time.perf_counter()
    cpu0 = time.process_time()
    detector = ort.InferenceSession(str(FACE_MODEL), providers=["CPUExecutionProvider"])  # default threading
    mesh = DefaultLitert(models.mesh)
    pre, decode = models.face_fns()
    det_in = np.empty((1, 3, *models.faces.input_size_hw), np.float32)
    det_name = detector.get_inputs()[0].name
    sink = models.sink(info, input_path, out_dir, mesh)
    sheet = ContactSheet(info.frames_declared)
    stage = dict.fromkeys(STAGES, 0.0)
    frames = faces = 0
    with av.open(str(input_path)) as src, av.open(str(out_dir / "annotated.mp4"), "w", format="mp4") as dst:
        vin = src.streams.video[0]
        options = {"preset": p["encode_preset"], "crf": str(p["crf"])}
        vout = dst.add_stream("libx264", rate=vin.average_rate, options=options)
        vout.width, vout.height, vout.pix_fmt = vin.width & ~1, vin.height & ~1, "yuv420p"
        assert vin.time_base is not None
        decoded = src.decode(vin)
        first_pts: int | None = None
        while True:
            t0 = time.perf_counter()
            av_frame = next(decoded, None)
            if av_frame is None:
                break
            image = cast(npt.NDArray[np.uint8], av_frame.to_ndarray(format="bgr24"))
            pts = av_frame.pts or 0
            first_pts = pts if first_pts is None else first_pts
            frame = Frame(frames, pts - first_pts, vin.time_base, image)
            t1 = time.perf_counter()
            scale = pre(image, det_in[0])
            found = decode([out[0] for out in detector.run(None, {det_name: det_in})], scale, image.shape[:2])
            t2 = time.perf_counter()
            sink.frame(frame, (found,))
            sheet.offer(frame, image)
            t3 = time.perf_counter()
            out_frame = av.VideoFrame.from_ndarray(image[: vout.height, : vout.width], format="bgr24")
            out_frame.pts = frames
            for packet in vout.encode(out_frame):
                dst.mux(packet)
            t4 = time.perf_counter()
            for key, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                stage[key] += dt
            frames += 1
            faces += len(found)
        t0 = time.perf_counter()
        for packet in vout.encode(None):
            dst.mux(packet)
        stage["encode_s"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    sink.finish(video_summary(info, frames))
    sheet.save(out_dir / "contact_sheet.png")
    stage["finish_s"] = time.perf_counter() - t0
    wall_s = time.perf_counter() - started
    cpu_s = time.process_time() - cpu0
    return {
        "frames": frames,
        "faces_detected": faces,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "fps": frames / wall_s,
        "stages_wall_s": stage,
        "sink_stats_s": dict(sink.stats),
        "ort_intra_op_threads": "default",
        "litert_num_threads": "default",
        "preset": p["encode_preset"],
        "crf": p["crf"],
        "summary": json.loads((out_dir / "driver.json").read_text())["summary"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    print(json.dumps(run(args.input, args.out_dir)))


if __name__ == "__main__":
    main()
