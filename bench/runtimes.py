"""YOLOX-nano per-frame latency in each in-process runtime: ONNX Runtime fp32, OpenVINO fp32 and bf16, at
1 and 2 threads, batch 1 and 4 (median of 30 runs after 5 warm-up runs, on a real dashcam still).

    python -m bench.runtimes [--shared ../shared] [--runs 30]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from framequeue.models.formats import get_format
from framequeue.models.repository import ModelRepository
from framequeue.models.runtimes import load_backend
from framequeue.models.serving import ServingConfig

RUNTIMES = (("ONNX Runtime fp32", "onnxruntime", "fp32"), ("OpenVINO fp32", "openvino", "fp32"),
            ("OpenVINO bf16", "openvino", "bf16"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    model_dir = args.shared / "models" / "yolox_nano"
    with tempfile.TemporaryDirectory() as tmp:
        repo = ModelRepository(Path(tmp))
        version = repo.add("yolox", model_dir / "yolox_nano.onnx", "yolox", model_dir / "coco_classes.txt")
        image = cv2.imread(str(args.shared / "media" / "stills" / "solidWhiteRight.jpg"))
        fmt = get_format("yolox")(version.input_size_hw, len(version.classes))
        one = np.empty((1, 3, *version.input_size_hw), np.float32)
        fmt.preprocess(image, one[0])
        print("| runtime | threads | batch | ms per frame (median) | frames/s |\n|---|--:|--:|--:|--:|")
        for label, runtime, precision in RUNTIMES:
            configured = dataclasses.replace(version, serving=ServingConfig(runtime=runtime, precision=precision))
            for threads in (1, 2):
                model = load_backend(configured, threads)
                for batch_size in (1, 4):
                    batch = np.repeat(one, batch_size, 0)
                    for _ in range(5):
                        model.infer(batch)
                    times = []
                    for _ in range(args.runs):
                        started = time.perf_counter()
                        model.infer(batch)
                        times.append(time.perf_counter() - started)
                    ms = 1000 * statistics.median(times) / batch_size
                    print(f"| {label} | {threads} | {batch_size} | {ms:.1f} | {1000 / ms:.0f} |", flush=True)
                model.close()


if __name__ == "__main__":
    main()
