"""Ultralytics (v8/v11) and YOLOv5 decoding on synthetic tensors: their weights are AGPL, never shipped."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from framequeue.errors import InvalidParams
from framequeue.models.formats import get_format
from framequeue.models.formats.ultralytics import UltralyticsFormat, grid_cells
from framequeue.models.formats.yolov5 import Yolov5Format

SIZE_HW = (640, 640)
CLASSES = 80
ANCHORS = 8400

#: (cx, cy, w, h) network px, class, score: two cars overlapping (IoU 0.68), a person, a faint truck
BOXES = [
    ((100.0, 100.0, 50.0, 40.0), 2, 0.9),
    ((105.0, 100.0, 50.0, 40.0), 2, 0.8),
    ((300.0, 200.0, 30.0, 80.0), 0, 0.7),
    ((500.0, 500.0, 60.0, 60.0), 7, 0.2),
]


def ultralytics_head() -> npt.NDArray[np.float32]:
    head = np.zeros((4 + CLASSES, ANCHORS), np.float32)
    rng = np.random.default_rng(0)
    head[:4] = rng.uniform(10, 600, (4, ANCHORS))  # noise boxes with zero scores
    for col, (box, cls, score) in zip((17, 4000, 8100, 8399), BOXES, strict=True):
        head[:4, col] = box
        head[4 + cls, col] = score
    return head


def yolov5_head(obj: float = 1.0) -> npt.NDArray[np.float32]:
    head = np.zeros((25200, 5 + CLASSES), np.float32)
    for row, (box, cls, score) in zip((3, 9000, 20000, 25199), BOXES, strict=True):
        head[row, :4] = box
        head[row, 4] = obj
        head[row, 5 + cls] = score / obj
    return head


def xyxy(box: tuple[float, float, float, float]) -> list[float]:
    cx, cy, w, h = box
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


@pytest.mark.parametrize(
    ("fmt", "head"),
    [(UltralyticsFormat(SIZE_HW, CLASSES), ultralytics_head()), (Yolov5Format(SIZE_HW, CLASSES), yolov5_head(0.95))],
    ids=["ultralytics", "yolov5"],
)
def test_known_boxes_out_after_nms_threshold_and_class_filter(
    fmt: UltralyticsFormat, head: npt.NDArray[np.float32]
) -> None:
    det = fmt.decode([head], 1.0, SIZE_HW, 0.25, 0.45)
    assert det.class_id.tolist() == [2, 0]  # the second car is suppressed, the truck under threshold
    np.testing.assert_allclose(det.score, [0.9, 0.7], atol=1e-5)
    np.testing.assert_allclose(det.xyxy, [xyxy(BOXES[0][0]), xyxy(BOXES[2][0])], atol=1e-3)
    assert len(fmt.decode([head], 1.0, SIZE_HW, 0.1, 0.45)) == 3
    assert len(fmt.decode([head], 1.0, SIZE_HW, 0.25, 0.9)) == 3
    assert fmt.decode([head], 1.0, SIZE_HW, 0.1, 0.45, np.asarray([7], np.int64)).class_id.tolist() == [7]
    # a 1280x720 frame letterboxed into 640: scale 0.5
    det = fmt.decode([head], 0.5, (720, 1280), 0.25, 0.45)
    np.testing.assert_allclose(det.xyxy[0], np.asarray(xyxy(BOXES[0][0])) / 0.5, atol=1e-3)


def test_yolov5_score_is_obj_times_cls() -> None:
    head = yolov5_head()
    head[:, 4] *= 0.5
    assert Yolov5Format(SIZE_HW, CLASSES).decode([head], 1.0, SIZE_HW, 0.25, 0.45).score.tolist() == pytest.approx(
        [0.45, 0.35]
    )


def test_preprocess_is_rgb_01() -> None:
    image = np.zeros((320, 640, 3), np.uint8)
    image[..., 0] = 255  # blue
    out = np.empty((3, *SIZE_HW), np.float32)
    scale = UltralyticsFormat(SIZE_HW, CLASSES).preprocess(image, out)
    assert scale == 1.0
    assert out[2, 0, 0] == 1.0 and out[0, 0, 0] == 0.0
    assert out[0, -1, -1] == pytest.approx(114 / 255)


def test_registry_and_shape_checks() -> None:
    assert grid_cells(SIZE_HW) == ANCHORS
    ultra = get_format("ultralytics")(SIZE_HW, CLASSES)
    ultra.check_outputs([[1, 84, 8400]])
    ultra.check_outputs([["batch", 84, "anchors"]])
    with pytest.raises(InvalidParams, match="predicts 76 classes"):
        ultra.check_outputs([[1, 80, 8400]])
    with pytest.raises(InvalidParams, match="anchors"):
        ultra.check_outputs([[1, 84, 25200]])
    v5 = get_format("yolov5")(SIZE_HW, CLASSES)
    v5.check_outputs([[1, 25200, 85]])
    with pytest.raises(InvalidParams, match="predicts 75 classes"):
        v5.check_outputs([[1, 25200, 80]])
    with pytest.raises(InvalidParams, match="anchors"):
        v5.check_outputs([[1, 8400, 85]])
