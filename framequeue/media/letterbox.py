"""Top-left letterbox into a network input, and the inverse mapping of boxes (YOLOX convention)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

#: grey that YOLOX was trained to see as padding
PAD_VALUE = 114.0


def letterbox_scale(image_hw: tuple[int, int], size_hw: tuple[int, int]) -> float:
    """Scale that fits an image of `image_hw` inside `size_hw` keeping its aspect ratio."""
    return min(size_hw[0] / image_hw[0], size_hw[1] / image_hw[1])


def letterbox(
    image: npt.NDArray[np.uint8],
    size_hw: tuple[int, int],
    out: npt.NDArray[np.float32] | None = None,
    pad_value: float = PAD_VALUE,
) -> tuple[npt.NDArray[np.float32], float]:
    """Resize HxWx3 `image` into a 3xHxW float32 tensor (same channel order, 0-255), placed top-left.

    Writes into `out` when given (a slot of a preallocated batch) and returns (tensor, scale), where
    network pixels = image pixels * scale.
    """
    net_h, net_w = size_hw
    if out is None:
        out = np.empty((3, net_h, net_w), np.float32)
    scale = letterbox_scale((image.shape[0], image.shape[1]), size_hw)
    new_h = min(net_h, max(1, round(image.shape[0] * scale)))
    new_w = min(net_w, max(1, round(image.shape[1] * scale)))
    if (new_h, new_w) != (image.shape[0], image.shape[1]):
        image = np.asarray(cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR), np.uint8)
    # only the pad is filled; the picture lands with a single strided copy that also converts to float32
    out[:, new_h:, :] = pad_value
    out[:, :new_h, new_w:] = pad_value
    np.copyto(out[:, :new_h, :new_w], image.transpose(2, 0, 1), casting="unsafe")
    return out, scale


def to_network_xyxy(xyxy: npt.NDArray[np.float32], scale: float) -> npt.NDArray[np.float32]:
    """Image-pixel boxes to letterboxed network pixels."""
    return (xyxy * np.float32(scale)).astype(np.float32, copy=False)


def to_image_xyxy(
    xyxy: npt.NDArray[np.float32], scale: float, image_hw: tuple[int, int]
) -> npt.NDArray[np.float32]:
    """Network-pixel boxes back to image pixels, clipped to the image (the inverse of letterbox)."""
    boxes = xyxy / np.float32(scale)
    np.clip(boxes[:, 0::2], 0, image_hw[1], out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, image_hw[0], out=boxes[:, 1::2])
    return boxes.astype(np.float32, copy=False)
