"""The naive baseline: one frame at a time, one thread of control, as AWS's SageMaker video sample does.

decode -> letterbox -> infer (batch of 1) -> draw -> encode (+ one JSON line of detections), frame after
frame, with each library's default threading: ONNX Runtime's default session options (its own intra-op
pool, spinning on), PyAV's default decoder and encoder threading. Same model file, thresholds, drawing,
encoder and preset/CRF as framequeue's `detect` pipeline; framequeue's own letterbox, YOLOX decoding and
drawing functions are reused so that both produce the same boxes and the comparison is about execution
(pipelining, batching, thread sizing), not about one side's pre/post-processing being sloppier.

    python -m bench.naive INPUT OUTPUT_DIR        # prints one JSON line with timings
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from bench.common import CLASSES, MODEL
from framequeue.media.annotate import annotate
from framequeue.media.encode import DEFAULT_CRF, DEFAULT_PRESET
from framequeue.media.letterbox import letterbox
from framequeue.models.formats.yolox import YoloxFormat
from framequeue.pipelines.detect import DEFAULTS

SCORE_THRESHOLD: float = DEFAULTS["score_threshold"]
NMS_IOU: float = DEFAULTS["nms_iou"]


def run(input_path: Path, out_dir: Path, preset: str = DEFAULT_PRESET, crf: int = DEFAULT_CRF) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    cpu0 = time.process_time()
    classes = [c.strip() for c in CLASSES.read_text().splitlines() if c.strip()]
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])  # default threading
    inp = session.get_inputs()[0]
    net_hw = (int(inp.shape[2]), int(inp.shape[3]))
    fmt = YoloxFormat(net_hw, len(classes))
    stage = dict.fromkeys(("decode_s", "preprocess_s", "infer_s", "postprocess_s", "render_s", "encode_s"), 0.0)
    frames = detections = 0
    with av.open(str(input_path)) as src, av.open(str(out_dir / "annotated.mp4"), "w", format="mp4") as dst, \
            (out_dir / "detections.jsonl").open("w") as log:
        vin = src.streams.video[0]
        vout = dst.add_stream("libx264", rate=vin.average_rate, options={"preset": preset, "crf": str(crf)})
        vout.width, vout.height, vout.pix_fmt = vin.width & ~1, vin.height & ~1, "yuv420p"
        decoded = src.decode(vin)
        while True:
            t0 = time.perf_counter()
            frame = next(decoded, None)
            if frame is None:
                break
            image = cast(npt.NDArray[np.uint8], frame.to_ndarray(format="bgr24"))
            t1 = time.perf_counter()
            tensor, scale = letterbox(image, net_hw)
            t2 = time.perf_counter()
            raw = session.run(None, {inp.name: tensor[np.newaxis]})[0]
            t3 = time.perf_counter()
            det = fmt.decode([raw[0]], scale, (image.shape[0], image.shape[1]), SCORE_THRESHOLD, NMS_IOU)
            t4 = time.perf_counter()
            annotate(image, det, classes)
            log.write(json.dumps({"frame": frames, "boxes": np.round(det.xyxy, 1).tolist(),
                                  "class_id": det.class_id.tolist(), "score": det.score.tolist()}) + "\n")
            t5 = time.perf_counter()
            out_frame = av.VideoFrame.from_ndarray(image[: vout.height, : vout.width], format="bgr24")
            out_frame.pts = frames
            for packet in vout.encode(out_frame):
                dst.mux(packet)
            t6 = time.perf_counter()
            for key, dt in zip(stage, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True):
                stage[key] += dt
            frames += 1
            detections += len(det)
        t0 = time.perf_counter()
        for packet in vout.encode(None):
            dst.mux(packet)
        stage["encode_s"] += time.perf_counter() - t0
    wall_s = time.perf_counter() - started
    return {
        "frames": frames,
        "detections": detections,
        "wall_s": wall_s,
        "cpu_s": time.process_time() - cpu0,
        "fps": frames / wall_s,
        "stages_wall_s": stage,
        "ort_intra_op_threads": "default",
        "preset": preset,
        "crf": crf,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    print(json.dumps(run(args.input, args.out_dir)))


if __name__ == "__main__":
    main()
