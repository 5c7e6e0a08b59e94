"""NanoDet decoding: GFL distance integral on synthetic heads, and the real model against YOLOX."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from framequeue.errors import InvalidParams
from framequeue.models.formats import get_format
from framequeue.models.formats.nanodet import REG_MAX, NanodetFormat, distribution_to_distance
from framequeue.models.onnx import create_session
from framequeue.models.predictions import Detections
from tests.conftest import require_shared

SIZE_HW = (416, 416)
CLASSES = 80
CELLS = {8: 52, 16: 26, 32: 13}


def empty_outputs() -> list[npt.NDArray[np.float32]]:
    """The six tensors in the real model's order: scores for 8/16/32, then box logits for 8/16/32."""
    scores = [np.zeros((n * n, CLASSES), np.float32) for n in CELLS.values()]
    boxes = [np.zeros((n * n, 4 * (REG_MAX + 1)), np.float32) for n in CELLS.values()]
    return scores + boxes


def place(
    outputs: list[npt.NDArray[np.float32]],
    stride: int,
    gx: int,
    gy: int,
    ltrb: tuple[int, int, int, int],
    cls: int,
    score: float,
) -> None:
    """A peaked distribution on bin `ltrb[k]` for each side: distances of exactly ltrb * stride."""
    level = list(CELLS).index(stride)
    row = gy * CELLS[stride] + gx
    outputs[level][row, cls] = score
    logits = np.full((4, REG_MAX + 1), -30.0, np.float32)
    logits[np.arange(4), list(ltrb)] = 30.0
    outputs[3 + level][row] = logits.reshape(-1)


def decode(outputs: list[npt.NDArray[np.float32]], **kwargs: object) -> Detections:
    args: dict[str, object] = {"scale": 1.0, "image_hw": SIZE_HW, "score_threshold": 0.35, "nms_iou": 0.45}
    args.update(kwargs)
    return NanodetFormat(SIZE_HW, CLASSES).decode(outputs, **args)  # type: ignore[arg-type]


def test_distribution_integral() -> None:
    uniform = np.zeros((1, 4 * (REG_MAX + 1)), np.float32)
    np.testing.assert_allclose(distribution_to_distance(uniform), [[3.5] * 4], atol=1e-5)


def test_known_box_decodes_around_cell_centre() -> None:
    outputs = empty_outputs()
    # stride-16 cell (10, 5): centre (168, 88); distances 2, 1, 3, 2 strides
    place(outputs, 16, 10, 5, (2, 1, 3, 2), cls=2, score=0.8)
    det = decode(outputs)
    np.testing.assert_allclose(det.xyxy, [[136, 72, 216, 120]], atol=1e-3)
    assert det.class_id.tolist() == [2] and det.score.tolist() == pytest.approx([0.8])
    # letterbox undone: a 1280x720 frame at scale 0.325
    det = decode(outputs, scale=0.325, image_hw=(720, 1280))
    np.testing.assert_allclose(det.xyxy, [np.array([136, 72, 216, 120]) / 0.325], atol=1e-2)
    # output order does not matter (tensors are matched by shape)
    assert len(decode(outputs[::-1])) == 1


def test_threshold_nms_and_class_filter() -> None:
    outputs = empty_outputs()
    place(outputs, 8, 20, 20, (3, 3, 3, 3), cls=0, score=0.9)
    place(outputs, 8, 21, 20, (3, 3, 3, 3), cls=0, score=0.7)  # IoU 0.6 with the first: suppressed
    place(outputs, 8, 21, 21, (3, 3, 3, 3), cls=7, score=0.6)  # other class: kept
    place(outputs, 32, 5, 5, (1, 1, 1, 1), cls=2, score=0.3)  # below threshold
    det = decode(outputs)
    assert det.class_id.tolist() == [0, 7]
    assert decode(outputs, score_threshold=0.25).class_id.tolist() == [0, 7, 2]
    assert decode(outputs, keep_class_ids=np.asarray([2, 7], np.int64)).class_id.tolist() == [7]
    assert len(decode(empty_outputs())) == 0


def test_registry_and_shape_check() -> None:
    fmt = get_format("nanodet")(SIZE_HW, CLASSES)
    shapes = [[1, n * n, CLASSES] for n in CELLS.values()] + [[1, n * n, 32] for n in CELLS.values()]
    fmt.check_outputs(shapes)
    with pytest.raises(InvalidParams, match="six outputs"):
        fmt.check_outputs(shapes[:5])
    with pytest.raises(InvalidParams, match="predicts 20 classes"):
        fmt.check_outputs([[1, n * n, 20] for n in CELLS.values()] + shapes[3:])
    with pytest.raises(InvalidParams, match="wrong input size"):
        get_format("nanodet")((320, 320), CLASSES).check_outputs(shapes)


def iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clip(0).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def test_real_model_finds_the_cars_yolox_finds() -> None:
    video = require_shared("media", "solidWhiteRight.mp4")
    nanodet_path = require_shared("models", "nanodet_m", "nanodet_m.onnx")
    yolox_path = require_shared("models", "yolox_nano", "yolox_nano.onnx")
    with av.open(str(video)) as container:
        frames = [
            f.to_ndarray(format="bgr24")
            for i, f in zip(range(121), container.decode(video=0), strict=False)
            if i in (0, 60, 120)
        ]
    models = []
    for name, path in (("nanodet", nanodet_path), ("yolox", yolox_path)):
        session = create_session(Path(path), threads=1, log_severity=3)
        fmt = get_format(name)(SIZE_HW, CLASSES)
        fmt.check_outputs([o.shape for o in session.get_outputs()])
        models.append((name, session, fmt))
    matched = total = 0
    for image in frames:
        found = {}
        for name, session, fmt in models:
            batch = np.empty((1, 3, *SIZE_HW), np.float32)
            scale = fmt.preprocess(image, batch[0])
            outputs = session.run(None, {session.get_inputs()[0].name: batch})
            det = fmt.decode([o[0] for o in outputs], scale, image.shape[:2], 0.25, 0.45)
            found[name] = det.xyxy[(det.class_id == 2) & (det.score >= (0.5 if name == "yolox" else 0.25))]
        assert len(found["nanodet"]) >= 1, "nanodet found no car"
        confident_yolox = found["yolox"]
        if len(confident_yolox) and len(found["nanodet"]):
            matched += int((iou(confident_yolox, found["nanodet"]).max(axis=1) >= 0.5).sum())
        total += len(confident_yolox)
    # YOLOX cars at score >= 0.5 (4 on these frames), NanoDet cars at >= 0.25
    assert total >= 3
    assert matched / total >= 0.75, f"only {matched} of {total} YOLOX car boxes matched by NanoDet"
