"""A still image (JPEG, PNG) is a one-frame input: probed with its header checked first, decoded to one frame,
run through detect to the usual outputs plus its annotated frame as a PNG."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from framequeue.errors import CorruptMedia, MediaLimitsExceeded, UnsupportedMedia
from framequeue.media.decode import decode_frames
from framequeue.media.headers import still_frame_size
from framequeue.media.limits import MediaLimits
from framequeue.media.probe import probe
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.base import RunContext
from framequeue.pipelines.detect import DetectPipeline
from tests.conftest import require_shared
from tests.unit.synthetic import write_tiny_yolox

LIMITS = MediaLimits()


def synthetic_still(path: Path, size_wh: tuple[int, int] = (200, 120)) -> Path:
    """A gradient with a bright box, written as JPEG or PNG by its suffix."""
    w, h = size_wh
    image = np.zeros((h, w, 3), np.uint8)
    image[:, :, 1] = np.linspace(0, 200, w, dtype=np.uint8)[None, :]
    image[30:80, 40:120] = 255
    assert cv2.imwrite(str(path), image)
    return path


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and an IHDR declaring width x height, then junk: what a crafted upload looks like."""
    return b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + b"IHDR" + width.to_bytes(4, "big") + \
        height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00" + b"\x00" * 4 + b"\x00" * 1000


def jpeg_header(width: int, height: int) -> bytes:
    """SOI, an APP0 segment, then a baseline SOF0 declaring width x height; then the end-of-image marker."""
    app0 = b"\xff\xe0" + (16).to_bytes(2, "big") + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + (17).to_bytes(2, "big") + b"\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + \
        b"\x03" + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + sof0 + b"\x00" * 1000 + b"\xff\xd9"


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_still_is_one_frame(tmp_path: Path, suffix: str) -> None:
    path = synthetic_still(tmp_path / f"still{suffix}")
    info = probe(path, LIMITS)
    assert (info.width, info.height, info.frames_declared) == (200, 120, 1)
    frames = list(decode_frames(path, info, threads=1))
    assert [f.index for f in frames] == [0] and frames[0].image.shape == (120, 200, 3)
    assert frames[0].image[50, 80].min() > 200  # the box came through


def test_concatenated_jpegs_are_one_frame_not_a_video(tmp_path: Path) -> None:
    one = synthetic_still(tmp_path / "one.jpg").read_bytes()
    path = tmp_path / "many.jpg"
    path.write_bytes(one * 50)
    assert sum(1 for _ in decode_frames(path, probe(path, LIMITS), threads=1)) == 1


@pytest.mark.parametrize("header", [png_header, jpeg_header], ids=["png", "jpeg"])
def test_a_crafted_header_over_the_pixel_limit_is_refused_before_decoding(tmp_path: Path, header: object) -> None:
    path = tmp_path / "bomb.img"
    path.write_bytes(header(60000, 60000))  # type: ignore[operator]
    with pytest.raises(MediaLimitsExceeded, match=r"60000x60000 \(declared\)"):
        probe(path, LIMITS)


def test_truncated_and_garbage_images_are_refused(tmp_path: Path) -> None:
    whole = synthetic_still(tmp_path / "whole.jpg", (640, 480)).read_bytes()
    cases = {
        "half.jpg": (whole[: len(whole) // 2], CorruptMedia, "no end-of-image marker"),
        "head.jpg": (whole[:100], CorruptMedia, "declares no frame size"),
        "zeros.jpg": (b"\xff\xd8\xff" + bytes(4000), CorruptMedia, "declares no frame size"),
        "half.png": (synthetic_still(tmp_path / "w.png").read_bytes()[:400], CorruptMedia, "half.png"),
        "random.jpg": (np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes(), UnsupportedMedia,
                       "not a video"),
    }
    for name, (data, error, text) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(error, match=text):
            list(decode_frames(path, probe(path, LIMITS), threads=1))


def test_any_cut_of_an_image_head_is_read_or_refused_never_crashes(tmp_path: Path) -> None:
    jpeg = synthetic_still(tmp_path / "s.jpg").read_bytes()[:400]
    png = synthetic_still(tmp_path / "s.png").read_bytes()[:40]
    path = tmp_path / "cut"
    for data in [jpeg[:n] for n in range(len(jpeg))] + [png[:n] for n in range(len(png))] + \
            [b"\xff\xd8" + b"\xff" * 5000, b"\xff\xd8\xff\xe0\xff\xff" + bytes(100)]:
        path.write_bytes(data)
        assert still_frame_size(path) in (None, (200, 120))


def _run_detect(still: Path, out: Path, repo: ModelRepository, model: str) -> dict[str, str]:
    pipeline = DetectPipeline()
    ctx = RunContext(input_path=still, output_dir=out, params=pipeline.validate({"model": model}, repo), models=repo,
                     threads=2, on_progress=lambda p: None, stop=threading.Event())
    result = pipeline.run(ctx)
    assert result.frames_total == 1
    return dict(result.outputs)


def test_detect_on_a_synthetic_png(tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="the tiny test model is built with the onnx package")
    repo = ModelRepository(tmp_path / "models")
    repo.add("tiny", *write_tiny_yolox(tmp_path / "src")[:1], "yolox", tmp_path / "src" / "classes.txt")
    outputs = _run_detect(synthetic_still(tmp_path / "in.png"), tmp_path / "out", repo, "tiny")
    assert outputs == {"video": "annotated.mp4", "detections": "detections.json",
                       "contact_sheet": "contact_sheet.png", "image": "annotated.png"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(outputs.values())


def test_detect_on_a_real_dashcam_still(tmp_path: Path) -> None:
    still = require_shared("media", "stills", "solidWhiteRight.jpg")
    model_dir = require_shared("models", "yolox_nano")
    repo = ModelRepository(tmp_path / "models")
    repo.add("yolox_nano", model_dir / "yolox_nano.onnx", "yolox", model_dir / "coco_classes.txt")
    out = tmp_path / "out"
    _run_detect(still, out, repo, "yolox_nano")
    detections = json.loads((out / "detections.json").read_text())
    (frame,) = detections["frames"]
    assert frame["frame"] == 0 and frame["time_s"] == 0
    assert sum(d["class"] == "car" for d in frame["detections"]) >= 1, frame
    assert detections["video"]["frames"] == 1
    annotated = cv2.imread(str(out / "annotated.png"))
    assert annotated is not None and annotated.shape == (540, 960, 3)
    assert not np.array_equal(annotated, cv2.imread(str(still)))  # the boxes are drawn on it
    with av.open(str(out / "annotated.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 1
