"""YOLOX decoding on synthetic raw-head tensors: grid placement, scores, threshold, class-aware NMS."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from framequeue.errors import InvalidParams
from framequeue.models.formats import get_format
from framequeue.models.formats.yolox import YoloxFormat, make_grid, nms
from framequeue.models.predictions import Detections

SIZE_HW = (416, 416)
CLASSES = 80


def empty_head() -> npt.NDArray[np.float32]:
    return np.zeros((52 * 52 + 26 * 26 + 13 * 13, 5 + CLASSES), np.float32)


def anchor(stride: int, gx: int, gy: int) -> int:
    """Row of cell (gx, gy) of the stride's grid, following the documented 52/26/13 order."""
    offset = {8: 0, 16: 52 * 52, 32: 52 * 52 + 26 * 26}[stride]
    return offset + gy * (416 // stride) + gx


def place(
    head: npt.NDArray[np.float32],
    stride: int,
    gx: int,
    gy: int,
    box_xywh: tuple[float, float, float, float],
    obj: float,
    cls: int,
    cls_p: float,
) -> None:
    """Write the raw regression that decodes to centre (x, y) and size (w, h) in network pixels."""
    x, y, w, h = box_xywh
    row = anchor(stride, gx, gy)
    head[row, :4] = (x / stride - gx, y / stride - gy, math.log(w / stride), math.log(h / stride))
    head[row, 4] = obj
    head[row, 5 + cls] = cls_p


def decode(
    head: npt.NDArray[np.float32],
    scale: float = 1.0,
    image_hw: tuple[int, int] = SIZE_HW,
    score_threshold: float = 0.35,
    nms_iou: float = 0.45,
    keep_class_ids: npt.NDArray[np.int64] | None = None,
) -> Detections:
    fmt = YoloxFormat(SIZE_HW, CLASSES)
    return fmt.decode([head], scale, image_hw, score_threshold, nms_iou, keep_class_ids)


def test_grid_follows_input_size() -> None:
    grid, strides = make_grid((416, 416))
    assert len(grid) == 3549
    assert tuple(grid[anchor(16, 7, 3)]) == (7, 3) and strides[anchor(16, 7, 3), 0] == 16
    grid, _ = make_grid((640, 320))
    assert len(grid) == (80 * 40) + (40 * 20) + (20 * 10)


def test_known_box_at_known_cell_decodes() -> None:
    head = empty_head()
    # centre (168, 84), size 48x32 in the stride-16 cell (10, 5), class 2 ("car"), obj 0.9, cls 0.8
    place(head, 16, 10, 5, (168.5, 84.25, 48.0, 32.0), obj=0.9, cls=2, cls_p=0.8)
    det = decode(head)
    assert len(det) == 1
    np.testing.assert_allclose(det.xyxy[0], [144.5, 68.25, 192.5, 100.25], atol=1e-3)
    assert det.class_id.tolist() == [2]
    assert det.score[0] == pytest.approx(0.72, abs=1e-6)
    assert det.xyxy.dtype == np.float32


def test_letterbox_is_undone_and_boxes_clipped() -> None:
    head = empty_head()
    place(head, 8, 4, 4, (36.0, 36.0, 16.0, 16.0), obj=0.9, cls=0, cls_p=0.9)
    place(head, 32, 12, 6, (405.0, 200.0, 40.0, 40.0), obj=0.9, cls=1, cls_p=0.9)
    # a 1280x720 frame letterboxed to 416: scale 0.325, so image px = network px / 0.325
    det = decode(head, scale=0.325, image_hw=(720, 1280))
    by_class = {int(c): box for c, box in zip(det.class_id, det.xyxy, strict=True)}
    np.testing.assert_allclose(by_class[0], np.array([28, 28, 44, 44]) / 0.325, atol=1e-2)
    # (405 + 20) / 0.325 = 1307.7 lies beyond the 1280 px image
    np.testing.assert_allclose(by_class[1], [385 / 0.325, 180 / 0.325, 1280, 220 / 0.325], atol=1e-2)


def test_nms_drops_overlapping_lower_score_of_same_class_only() -> None:
    head = empty_head()
    place(head, 16, 10, 10, (168.0, 168.0, 60.0, 60.0), obj=0.95, cls=2, cls_p=0.9)
    place(head, 16, 11, 10, (176.0, 168.0, 60.0, 60.0), obj=0.9, cls=2, cls_p=0.8)  # IoU ~0.76
    place(head, 16, 10, 11, (168.0, 176.0, 60.0, 60.0), obj=0.9, cls=7, cls_p=0.8)  # truck, same place
    place(head, 16, 20, 20, (328.0, 328.0, 60.0, 60.0), obj=0.9, cls=2, cls_p=0.7)  # far away
    det = decode(head)
    assert det.class_id.tolist() == [2, 7, 2]
    np.testing.assert_allclose(det.score, [0.855, 0.72, 0.63], atol=1e-6)
    assert det.xyxy[0, 0] == pytest.approx(138.0, abs=1e-3)
    # a looser IoU threshold keeps the overlapping car
    assert len(decode(head, nms_iou=0.9)) == 4


def test_threshold_applies_to_obj_times_cls() -> None:
    head = empty_head()
    place(head, 8, 5, 5, (44.0, 44.0, 20.0, 20.0), obj=0.6, cls=0, cls_p=0.5)  # 0.30: dropped
    place(head, 8, 30, 30, (244.0, 244.0, 20.0, 20.0), obj=0.3, cls=0, cls_p=1.0)  # obj too low
    place(head, 8, 40, 40, (324.0, 324.0, 20.0, 20.0), obj=0.7, cls=0, cls_p=0.6)  # 0.42: kept
    det = decode(head)
    assert det.score.tolist() == pytest.approx([0.42])
    assert decode(head, score_threshold=0.25).score.tolist() == pytest.approx([0.42, 0.3, 0.3])
    assert len(decode(empty_head())) == 0


def test_class_filter_keeps_only_requested_classes() -> None:
    head = empty_head()
    place(head, 16, 10, 10, (168.0, 168.0, 60.0, 60.0), obj=0.9, cls=0, cls_p=0.9)
    place(head, 16, 20, 20, (328.0, 328.0, 60.0, 60.0), obj=0.9, cls=2, cls_p=0.9)
    det = decode(head, keep_class_ids=np.asarray([2, 7], np.int64))
    assert det.class_id.tolist() == [2]


def test_nms_is_class_aware_and_orders_by_score() -> None:
    xyxy = np.asarray([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    score = np.asarray([0.5, 0.9, 0.8, 0.7], np.float32)
    cls = np.asarray([0, 0, 1, 0], np.int64)
    assert nms(xyxy, score, cls, 0.5).tolist() == [1, 2, 3]


def test_format_registry_and_shape_check() -> None:
    fmt = get_format("yolox")((416, 416), 80)
    fmt.check_outputs([[1, 3549, 85]])
    fmt.check_outputs([["batch", 3549, 85]])
    with pytest.raises(InvalidParams, match="predicts 75 classes"):
        fmt.check_outputs([[1, 3549, 80]])
    with pytest.raises(InvalidParams, match="anchors"):
        fmt.check_outputs([[1, 8400, 85]])
    with pytest.raises(InvalidParams, match="known formats: yolox"):
        get_format("nanodet-x")
    with pytest.raises(InvalidParams, match="divisible by 32"):
        YoloxFormat((420, 416), 80)
