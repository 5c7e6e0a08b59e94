"""Thin core types of the model layer: a stored model version and one frame's detections."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

#: file names inside <root>/<name>/<version>/
MODEL_FILE = "model.onnx"
CONFIG_FILE = "config.yaml"


@dataclass(frozen=True)
class ModelVersion:
    name: str
    #: 1, 2, ... in the order versions were added
    version: int
    #: the version's folder, holding MODEL_FILE and CONFIG_FILE
    path: Path
    #: output layout and pre-processing, a key of framequeue.models.formats
    format: str
    #: name of the image input of the graph
    input_name: str
    #: network input size (height, width) in pixels
    input_size_hw: tuple[int, int]
    #: class names, index = class id
    classes: tuple[str, ...]
    #: whether one session run takes a batch of N (False: infer loops over batch-1 runs)
    batch_native: bool
    #: hex sha256 of the stored model.onnx (after any batch-dimension rewrite)
    sha256: str
    #: hex sha256 of the file that was added, for provenance
    source_sha256: str
    #: ISO 8601 UTC time the version was added
    created_at: str

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class Detections:
    """Boxes of one frame in original image pixels."""

    #: Nx4 float32, (x1, y1, x2, y2) pixels, clipped to the image
    xyxy: npt.NDArray[np.float32]
    #: N int64 indexes into the model's classes
    class_id: npt.NDArray[np.int64]
    #: N float32 in [0, 1], descending
    score: npt.NDArray[np.float32]

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.xyxy.shape != (n, 4) or self.class_id.shape != (n,) or self.score.shape != (n,):
            raise ValueError(
                f"inconsistent detection shapes {self.xyxy.shape} {self.class_id.shape} {self.score.shape}"
            )

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32))


@dataclass(frozen=True)
class Faces:
    """Faces of one frame in original image pixels, each with the keypoints its model predicts."""

    #: Nx4 float32, (x1, y1, x2, y2) pixels, clipped to the image
    xyxy: npt.NDArray[np.float32]
    #: N float32 in [0, 1], descending
    score: npt.NDArray[np.float32]
    #: NxKx2 float32 (x, y) pixels, not clipped. YuNet K=5: right eye, left eye, nose tip, right and
    #: left mouth corners (the subject's right/left); BlazeFace K=6: right eye, left eye, nose tip,
    #: mouth centre, right and left ear tragion
    landmarks: npt.NDArray[np.float32]

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if (
            self.xyxy.shape != (n, 4)
            or self.score.shape != (n,)
            or self.landmarks.ndim != 3
            or self.landmarks.shape[0] != n
            or self.landmarks.shape[2] != 2
        ):
            raise ValueError(f"inconsistent face shapes {self.xyxy.shape} {self.score.shape} {self.landmarks.shape}")

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls, num_landmarks: int) -> Faces:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, num_landmarks, 2), np.float32))


@dataclass(frozen=True)
class Lanes:
    """Lane markers of one frame as polylines in original image pixels."""

    #: one Px2 float32 array of (x, y) pixels per lane, ordered by y; points outside the image dropped
    polylines: tuple[npt.NDArray[np.float32], ...]
    #: N float32 in [0, 1], descending
    score: npt.NDArray[np.float32]

    def __post_init__(self) -> None:
        if self.score.shape != (len(self.polylines),) or any(p.ndim != 2 or p.shape[1] != 2 for p in self.polylines):
            raise ValueError(f"inconsistent lane shapes {[p.shape for p in self.polylines]} {self.score.shape}")

    def __len__(self) -> int:
        return len(self.polylines)
