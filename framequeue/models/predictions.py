"""What a model's output decoder (framequeue.models.formats) gives for one frame, in original image pixels:
detections, faces with their keypoints, lane polylines, a face's mesh of landmarks. Plain frozen arrays,
shared by the pipelines and the tracker."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


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


@dataclass(frozen=True)
class FaceMesh:
    """One face's mesh in original image pixels."""

    #: 468x3 float32 (x, y, z) pixels; z is depth relative to the face's centre, at the scale of x
    points: npt.NDArray[np.float32]
    #: face presence in [0, 1] (sigmoid of the model's logit): low when the crop holds no face
    score: float
