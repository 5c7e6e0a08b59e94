"""Model output formats: pre-processing and decoding for one family of detectors each.

A format is built for one stored model (input size, number of classes) and turns an image into the
network's input and one frame's raw outputs into `Detections`. Adding a family (Ultralytics, NanoDet)
means one module here and one line in `_FORMATS`; modules are imported only when asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Final, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from framequeue.errors import InvalidParams
from framequeue.models.predictions import Detections, Faces, Lanes

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


#: what a non-detection format decodes one frame into
ResultT_co = TypeVar("ResultT_co", Faces, Lanes, covariant=True)


class ResultFormat(Protocol[ResultT_co]):
    """A model whose frame result is not `Detections` (faces with keypoints, lanes).

    Same contract as ModelFormat, except that pre-processing may scale x and y differently (some
    models take a stretched frame), classes and NMS are the model's own, and decode returns the
    format's result type in original image pixels.
    """

    def check_outputs(self, output_shapes: Sequence[Shape]) -> None:
        """Raise InvalidParams, saying what was expected, when the graph's outputs do not fit."""
        ...

    def preprocess(self, image: npt.NDArray[np.uint8], out: npt.NDArray[np.float32]) -> tuple[float, float]:
        """Write HxWx3 BGR `image` into `out` (the CxHxW network input); return (x, y) image->network scales."""
        ...

    def decode(
        self,
        outputs: Sequence[npt.NDArray[np.float32]],
        scale_xy: tuple[float, float],
        image_hw: tuple[int, int],
        score_threshold: float,
    ) -> ResultT_co:
        """One frame's raw outputs (batch dim removed, in the graph's output order) -> its result."""
        ...


def check_single_output(
    family: str,
    output_shapes: Sequence[Shape],
    input_size_hw: tuple[int, int],
    *,
    anchors: int,
    box_fields: int,
    num_classes: int,
    anchors_last: bool = False,
    hint: str = "",
) -> None:
    """The shape check shared by the one-output detector layouts: [N, anchors, box_fields + classes], or
    [N, box_fields + classes, anchors] with `anchors_last`. InvalidParams says what was expected."""
    columns = box_fields + num_classes
    expected = f"one output [N, {columns}, {anchors}]" if anchors_last else f"one output [N, {anchors}, {columns}]"
    if len(output_shapes) != 1 or len(output_shapes[0]) != 3:
        raise InvalidParams(f"format: {family} model has {expected}, this one has {list(output_shapes)}")
    _, second, third = output_shapes[0]
    got_columns, got_anchors = (second, third) if anchors_last else (third, second)
    if isinstance(got_anchors, int) and got_anchors != anchors:
        raise InvalidParams(
            f"format: {family} model has {expected} for input {input_size_hw}, "
            f"this one has {got_anchors} anchors (wrong input size{hint}?)"
        )
    if isinstance(got_columns, int) and got_columns != columns:
        raise InvalidParams(
            f"classes: the model predicts {got_columns - box_fields} classes but the classes file "
            f"lists {num_classes}"
        )


#: builds a format for a model of (input_size_hw, number of classes)
FormatFactory = Callable[[tuple[int, int], int], ModelFormat]
#: the same for formats that decode into faces or lanes
ResultFormatFactory = Callable[[tuple[int, int], int], ResultFormat[Faces] | ResultFormat[Lanes]]

#: format name -> "module:factory", imported lazily
_FORMATS: Final[dict[str, str]] = {
    "yolox": "framequeue.models.formats.yolox:YoloxFormat",
    "nanodet": "framequeue.models.formats.nanodet:NanodetFormat",
    "ultralytics": "framequeue.models.formats.ultralytics:UltralyticsFormat",
    "yolov5": "framequeue.models.formats.yolov5:Yolov5Format",
    "yunet": "framequeue.models.formats.yunet:YunetFormat",
    "blazeface": "framequeue.models.formats.blazeface:BlazefaceFormat",
    "lstr": "framequeue.models.formats.lstr:LstrFormat",
    "facemesh": "framequeue.models.formats.facemesh:FacemeshFormat",
}
#: formats whose decode returns Faces or Lanes (ResultFormat) rather than Detections, with the class list a
#: version of theirs gets when no classes file is given
_RESULT_FORMATS: Final[dict[str, tuple[str, ...]]] = {
    "yunet": ("face",),
    "blazeface": ("face",),
    "lstr": ("lane",),
}


#: second-stage formats run on a crop of one face (FacemeshFormat's own preprocess and decode), stored as `.tflite`
_LANDMARK_FORMATS: Final = frozenset({"facemesh"})


def available_formats() -> list[str]:
    """Format names in registration order: the default (yolox) first, then the others as added."""
    return list(_FORMATS)


def _load(name: str) -> object:
    target = _FORMATS.get(name)
    if target is None:
        raise InvalidParams(
            f"format: unknown model format {name!r}; known formats: {', '.join(available_formats())}"
        )
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)


def get_format(name: str) -> FormatFactory:
    """The factory of detection format `name`; InvalidParams listing the known formats otherwise."""
    factory = _load(name)
    if name in _RESULT_FORMATS or name in _LANDMARK_FORMATS:
        raise InvalidParams(f"format: {name!r} models output faces or lanes (or landmarks), not detections")
    return factory  # type: ignore[return-value]


def get_result_format(name: str) -> ResultFormatFactory:
    """The factory of face or lane format `name`; InvalidParams when unknown or a detection format."""
    factory = _load(name)
    if name not in _RESULT_FORMATS:
        raise InvalidParams(f"format: {name!r} models output detections; use get_format")
    return factory  # type: ignore[return-value]


def is_result_format(name: str) -> bool:
    """Whether `name` decodes into faces or lanes (get_result_format) rather than detections."""
    return name in _RESULT_FORMATS


def default_classes(name: str) -> tuple[str, ...] | None:
    """The classes of a face, lane or landmark format (one: what it finds); None for detection formats, which
    need a file."""
    return ("face",) if name in _LANDMARK_FORMATS else _RESULT_FORMATS.get(name)


def is_landmark_format(name: str) -> bool:
    """Whether `name` is a second stage on a face crop (FaceMesh), stored as a `.tflite` model."""
    return name in _LANDMARK_FORMATS


def get_landmark_format(name: str) -> object:
    """An instance of landmark format `name` (FacemeshFormat); InvalidParams for any other format."""
    if name not in _LANDMARK_FORMATS:
        raise InvalidParams(f"format: {name!r} is not a landmark format ({', '.join(sorted(_LANDMARK_FORMATS))})")
    factory = _load(name)
    assert callable(factory)
    return factory()
