"""The naive baseline for the `road` work: one frame at a time, one thread of control.

decode -> YOLOX (batch of 1) -> LSTR (batch of 1) -> tracking, lanes, lead, distance / gap / TTC, events,
overlay and road.json record -> encode, frame after frame, with each library's default threading: ONNX
Runtime's default session options for both models (its own intra-op pool, spinning on), PyAV's default
decoder and encoder threading, OpenCV's default. Same model files, params (the demo's), thresholds, encoder
preset and CRF as framequeue's `road` pipeline, and framequeue's own pre/post-processing and its RoadSink
(ByteTrack, lane smoothing, lead, geometry, events, draw_road, the JSON record) are reused, so that both do
the same work and the comparison is about execution (pipelining, batching, thread sizing), not about one
side's pre/post-processing being sloppier. Like framequeue it also writes the contact sheet and timeline.png.
Timed from model load to the last file written (interpreter start and imports excluded, as in bench/naive.py).

    python -m bench.road_naive INPUT OUTPUT_DIR        # prints one JSON line with timings
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from bench.common import MODEL
from bench.road_stages import LANE_MODEL, RoadModels, preload, video_summary
from framequeue.media.frames import Frame
from framequeue.media.limits import MediaLimits
from framequeue.media.probe import probe
from framequeue.media.sheet import ContactSheet

STAGES = ("decode_s", "detector_s", "lanes_s", "sink_s", "encode_s")


def run(input_path: Path, out_dir: Path) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    preload()  # imports are not timed (matplotlib's, for the timeline, among them), as in bench/naive.py
    with tempfile.TemporaryDirectory(prefix="fq-bench-road-naive-") as tmp:
        models = RoadModels.register(Path(tmp) / "models")  # for the params and formats only: not timed
    p = models.params
    info = probe(input_path, MediaLimits())
    started = time.perf_counter()
    cpu0 = time.process_time()
    detector = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])  # default threading
    lanes = ort.InferenceSession(str(LANE_MODEL), providers=["CPUExecutionProvider"])
    det_pre, det_decode = models.detector_fns()
    lane_pre, lane_decode = models.lane_fns()
    det_in = np.empty((1, 3, *models.detector.input_size_hw), np.float32)
    lane_in = np.empty((1, 3, *models.lanes.input_size_hw), np.float32)
    lane_mask = np.zeros((1, 1, *models.lanes.input_size_hw), np.float32)
    det_name, (lane_name, mask_name) = detector.get_inputs()[0].name, (i.name for i in lanes.get_inputs())
    sink = models.sink(info, out_dir)
    sheet = ContactSheet(info.frames_declared)
    stage = dict.fromkeys(STAGES, 0.0)
    frames = 0
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
            hw = (image.shape[0], image.shape[1])
            t1 = time.perf_counter()
            scale = det_pre(image, det_in[0])
            det = det_decode([out[0] for out in detector.run(None, {det_name: det_in})], scale, hw)
            t2 = time.perf_counter()
            scale_xy = lane_pre(image, lane_in[0])
            raw = lanes.run(None, {lane_name: lane_in, mask_name: lane_mask})
            lane = lane_decode([out[0] for out in raw], scale_xy, hw)
            t3 = time.perf_counter()
            sink.frame(frame, (det, lane))
            sheet.offer(frame, image)
            t4 = time.perf_counter()
            out_frame = av.VideoFrame.from_ndarray(image[: vout.height, : vout.width], format="bgr24")
            out_frame.pts = frames
            for packet in vout.encode(out_frame):
                dst.mux(packet)
            t5 = time.perf_counter()
            for key, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                stage[key] += dt
            frames += 1
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
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "fps": frames / wall_s,
        "stages_wall_s": stage,
        "sink_stats_s": dict(sink.stats),
        "ort_intra_op_threads": "default",
        "preset": p["encode_preset"],
        "crf": p["crf"],
        "summary": json.loads((out_dir / "road.json").read_text())["summary"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    print(json.dumps(run(args.input, args.out_dir)))


if __name__ == "__main__":
    main()
