"""Letterbox: top-left placement, pad 114, channel order kept, and boxes that map back within 1 px."""

from __future__ import annotations

import numpy as np
import pytest

from framequeue.media.letterbox import PAD_VALUE, letterbox, letterbox_scale, to_image_xyxy, to_network_xyxy

NET_HW = (416, 416)
SIZES_HW = [(540, 960), (960, 540), (416, 416), (1080, 1920), (200, 300), (500, 100), (31, 47)]


@pytest.mark.parametrize("image_hw", SIZES_HW)
def test_layout_and_padding(image_hw: tuple[int, int]) -> None:
    image = np.full((*image_hw, 3), (200, 100, 50), np.uint8)  # B, G, R
    tensor, scale = letterbox(image, NET_HW)
    assert tensor.shape == (3, *NET_HW) and tensor.dtype == np.float32
    assert scale == pytest.approx(min(NET_HW[0] / image_hw[0], NET_HW[1] / image_hw[1]))
    new_h, new_w = round(image_hw[0] * scale), round(image_hw[1] * scale)
    # picture top-left, channels in the image's own (BGR) order, 0-255, not normalised
    assert tensor[:, :new_h, :new_w].reshape(3, -1).mean(axis=1).tolist() == pytest.approx([200, 100, 50])
    assert np.all(tensor[:, new_h:, :] == PAD_VALUE)
    assert np.all(tensor[:, :, new_w:] == PAD_VALUE)


@pytest.mark.parametrize("image_hw", SIZES_HW)
def test_boxes_round_trip_within_a_pixel(image_hw: tuple[int, int]) -> None:
    rng = np.random.default_rng(image_hw[0])
    h, w = image_hw
    x1, y1 = rng.uniform(0, w * 0.6, 20), rng.uniform(0, h * 0.6, 20)
    x2, y2 = x1 + rng.uniform(1, w * 0.4, 20), y1 + rng.uniform(1, h * 0.4, 20)
    boxes = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)
    scale = letterbox_scale(image_hw, NET_HW)
    back = to_image_xyxy(to_network_xyxy(boxes, scale), scale, image_hw)
    assert np.abs(back - boxes).max() <= 1.0


@pytest.mark.parametrize("image_hw", [(540, 960), (960, 540), (300, 200)])
def test_drawn_rectangle_maps_back_to_where_it_was(image_hw: tuple[int, int]) -> None:
    h, w = image_hw
    image = np.zeros((h, w, 3), np.uint8)
    box = np.asarray([[w * 0.25, h * 0.5, w * 0.75, h * 0.9]], np.float32).round()
    x1, y1, x2, y2 = box[0].astype(int)
    image[y1:y2, x1:x2] = 255
    tensor, scale = letterbox(image, NET_HW)
    ys, xs = np.nonzero(tensor[0] > 127)
    found = np.asarray([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    back = to_image_xyxy(found, scale, image_hw)
    # one network pixel of resampling error is 1/scale image pixels
    assert np.abs(back - box).max() <= 1.0 / scale + 1.0


def test_inverse_clips_to_the_image() -> None:
    boxes = np.asarray([[-10, -5, 500, 300]], np.float32)
    assert to_image_xyxy(boxes, 0.5, (540, 960)).tolist() == [[0, 0, 960, 540]]


def test_writes_into_a_batch_slot() -> None:
    batch = np.zeros((2, 3, *NET_HW), np.float32)
    image = np.full((100, 200, 3), 7, np.uint8)
    tensor, _ = letterbox(image, NET_HW, out=batch[1])
    assert np.shares_memory(tensor, batch) and batch[1, 0, 0, 0] == 7 and batch[0].max() == 0
