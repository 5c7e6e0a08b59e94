"""CPU cost of each stage of framequeue's `detect` work, each measured alone, for the 2-core ceiling.

One process, every native pool sized to one thread (decoder, ONNX Runtime, x264: framequeue's own
settings, `stage_threads`, for FQ_WORKER_THREADS 1 and 2), the stages run one after another on each
batch of frames, so nothing overlaps and the process CPU time (time.process_time: all threads) spent in
each section is that stage's cost alone:

    decode      next frame from PyAV + conversion to a BGR array (framequeue.media.decode)
    infer       letterbox into the batch + ONNX Runtime on batches of 4 + YOLOX decoding and NMS
    render      boxes and labels, contact-sheet thumbnail, detections JSON line, libx264 encode

framequeue's own functions and model repository (the batch-rewritten ONNX) are used, so this is the
work a framequeue job does, minus the cost of running the stages concurrently.

    python -m bench.stages INPUT       # prints one JSON line
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import CLASSES, MODEL
from framequeue.media.annotate import annotate
from framequeue.media.decode import decode_frames
from framequeue.media.encode import VideoEncoder
from framequeue.media.frames import Frame
from framequeue.media.limits import MediaLimits
from framequeue.media.probe import probe
from framequeue.media.sheet import ContactSheet
from framequeue.models.formats import get_format
from framequeue.models.onnx import OnnxModel
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.detect import DEFAULTS
from framequeue.pipelines.stages import stage_threads

STAGES = ("decode", "infer", "render")


def measure(input_path: Path, worker_threads: int = 1) -> dict[str, Any]:
    threads = stage_threads(worker_threads)
    batch_size: int = DEFAULTS["batch_size"]
    with tempfile.TemporaryDirectory(prefix="fq-bench-stages-") as tmp:
        version = ModelRepository(Path(tmp) / "models").add("yolox_nano", MODEL, "yolox", CLASSES)
        model = OnnxModel.load(version, threads.infer)
        fmt = get_format(version.format)(version.input_size_hw, len(version.classes))
        info = probe(input_path, MediaLimits())
        encoder = VideoEncoder(Path(tmp) / "out.mp4", info.resolution_wh, info.rate, info.time_base,
                               preset=DEFAULTS["encode_preset"], crf=DEFAULTS["crf"], threads=threads.encode)
        sheet = ContactSheet(info.frames_declared)
        batch = np.empty((batch_size, 3, *version.input_size_hw), np.float32)
        cpu = dict.fromkeys(STAGES, 0.0)
        frames = 0
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        decoded = decode_frames(input_path, info, threads.decode)
        with (Path(tmp) / "detections.json").open("w") as log:
            done = False
            while not done:
                t0 = time.process_time()
                pending: list[Frame] = []
                while len(pending) < batch_size:
                    frame = next(decoded, None)
                    if frame is None:
                        done = True
                        break
                    pending.append(frame)
                t1 = time.process_time()
                scales = [fmt.preprocess(f.image, batch[i]) for i, f in enumerate(pending)]
                outputs = model.infer(batch[: len(pending)]) if pending else []
                dets = [
                    fmt.decode([out[i] for out in outputs], scales[i], f.image.shape[:2],
                               DEFAULTS["score_threshold"], DEFAULTS["nms_iou"])
                    for i, f in enumerate(pending)
                ]
                t2 = time.process_time()
                for f, det in zip(pending, dets, strict=True):
                    annotate(f.image, det, version.classes)
                    sheet.offer(f, f.image)
                    log.write(json.dumps({"frame": f.index, "xyxy": np.round(det.xyxy, 1).tolist(),
                                          "class_id": det.class_id.tolist(), "score": det.score.tolist()}) + "\n")
                    encoder.write(f.image, f.pts)
                if done:
                    encoder.close()
                    sheet.save(Path(tmp) / "sheet.png")
                t3 = time.process_time()
                cpu["decode"] += t1 - t0
                cpu["infer"] += t2 - t1
                cpu["render"] += t3 - t2
                frames += len(pending)
        cpu_total = time.process_time() - cpu_start
        wall = time.perf_counter() - wall_start
    per_frame_ms = {k: 1000 * v / frames for k, v in cpu.items()}
    return {
        "input": str(input_path),
        "frames": frames,
        "stage_threads": threads._asdict(),
        "cpu_s": cpu,
        "cpu_ms_per_frame": per_frame_ms,
        "sum_ms_per_frame": sum(per_frame_ms.values()),
        "process_cpu_s": cpu_total,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path)
    parser.add_argument("--worker-threads", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(measure(args.input, args.worker_threads)))


if __name__ == "__main__":
    main()
