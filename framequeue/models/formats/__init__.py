"""Model output formats: pre-processing and decoding for one family of detectors each.

A format is built for one stored model (input size, number of classes) and turns an image into the
network's input and one frame's raw outputs into `Detections`. Adding a family (Ultralytics, NanoDet)
means one module here and one line in `_FORMATS`; modules are imported only when asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from framequeue.errors import InvalidParams
from framequeue.models.base import Detections

#: a tensor shape as ONNX Runtime reports it: ints, or str/None for symbolic dims
Shape = Sequence[int | str | None]


class ModelFormat(Protocol):
    def check_outputs(self, output_shapes: Sequence[Shape]) -> None:
        """Raise InvalidParams, saying what was expected, when the graph's outputs do not fit."""
        ...

    def preprocess(self, image: npt.NDArray[np.uint8], out: npt.NDArray[np.float32]) -> float:
        """Write HxWx3 BGR `image` into `out` (3xHxW network input); return image->network scale."""
        ...

    def decode(
        self,
        outputs: Sequence[npt.NDArray[np.float32]],
        scale: float,
        image_hw: tuple[int, int],
        score_threshold: float,
        nms_iou: float,
        keep_class_ids: npt.NDArray[np.int64] | None = None,
    ) -> Detections:
        """One frame's raw outputs (batch dim removed) -> detections in image pixels, after NMS."""
        ...


#: builds a format for a model of (input_size_hw, number of classes)
FormatFactory = Callable[[tuple[int, int], int], ModelFormat]

#: format name -> "module:factory", imported lazily
_FORMATS: Final[dict[str, str]] = {
    "yolox": "framequeue.models.formats.yolox:YoloxFormat",
}


def available_formats() -> list[str]:
    return sorted(_FORMATS)


def get_format(name: str) -> FormatFactory:
    """The factory of format `name`; InvalidParams listing the known formats otherwise."""
    target = _FORMATS.get(name)
    if target is None:
        raise InvalidParams(
            f"format: unknown model format {name!r}; known formats: {', '.join(available_formats())}"
        )
    module_name, attr = target.split(":")
    factory: FormatFactory = getattr(importlib.import_module(module_name), attr)
    return factory
