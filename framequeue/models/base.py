"""Thin core types of the model layer: a stored model version and one frame's detections."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

#: file names inside <root>/<name>/<version>/: the graph (ONNX, or a LiteRT flatbuffer) and its config
MODEL_FILE = "model.onnx"
TFLITE_FILE = "model.tflite"
CONFIG_FILE = "config.yaml"
#: beside a facemesh model: the 468-vertex canonical face (Wavefront .obj, cm) its head pose is solved against
CANONICAL_FACE_FILE = "canonical_face_model.obj"
#: vertices of that face, one per FaceMesh landmark
CANONICAL_FACE_VERTICES = 468

#: serving defaults for a config.yaml that does not name them (files written before they existed)
DEFAULT_MAX_BATCH_SIZE: Final = 8
DEFAULT_MAX_QUEUE_DELAY_US: Final = 2000
DEFAULT_INSTANCES: Final = 1
#: memory_bytes when a config does not give it = model file size x this: ONNX Runtime holds the weights
#: (once, plus a pre-packed copy for some kernels), its arena and a batch of activations
MEMORY_FACTOR: Final = 4
#: where a version's batches run in-process: ONNX Runtime (CUDA when present, else CPU), OpenVINO (CPU), or
#: LiteRT (CPU; `.tflite` models such as FaceMesh, the only runtime they have)
RUNTIMES: Final = ("onnxruntime", "openvino", "litert")
#: OpenVINO's inference precision; bf16 only takes effect on CPUs with BF16 (else fp32, logged)
PRECISIONS: Final = ("fp32", "bf16")


@dataclass(frozen=True)
class VersionPolicy:
    """Which stored versions of a model are served (Triton's version_policy).

    In config.yaml: `latest` (the newest only, the default), `{latest: N}` (the N newest), `all`, or
    `{specific: [1, 3]}`.
    """

    kind: Literal["latest", "all", "specific"] = "latest"
    #: the N newest for `latest`; unused for `all`
    num_versions: int = 1
    #: the versions served under `specific`
    versions: tuple[int, ...] = ()

    def select(self, stored: list[int]) -> list[int]:
        """The served versions among `stored` (ascending)."""
        ordered = sorted(stored)
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            return [v for v in ordered if v in self.versions]
        return ordered[-self.num_versions :] if ordered else []

    @classmethod
    def parse(cls, raw: Any) -> VersionPolicy:
        """From config.yaml's `version_policy` value; ValueError says what is wrong."""
        if raw is None or raw == "latest":
            return cls()
        if raw == "all":
            return cls("all")
        if isinstance(raw, dict) and len(raw) == 1:
            ((key, value),) = raw.items()
            if key == "latest" and isinstance(value, int) and value >= 1:
                return cls("latest", num_versions=value)
            if key == "specific" and isinstance(value, list) and value and all(
                isinstance(v, int) and v >= 1 for v in value
            ):
                return cls("specific", versions=tuple(sorted(set(value))))
        raise ValueError(
            f"version_policy: {raw!r} must be latest, all, {{latest: N}} or {{specific: [versions]}}"
        )

    def to_yaml(self) -> Any:
        if self.kind == "all":
            return "all"
        if self.kind == "specific":
            return {"specific": list(self.versions)}
        return "latest" if self.num_versions == 1 else {"latest": self.num_versions}


@dataclass(frozen=True)
class ServingConfig:
    """How `serve-models` runs a version: dynamic batching, parallel executions, memory it is charged."""

    #: rows merged into one execution; 1 turns dynamic batching off
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    #: how long the oldest queued request may wait for others to join its batch
    max_queue_delay_us: int = DEFAULT_MAX_QUEUE_DELAY_US
    #: executions of this version that may run at once (one session, ONNX Runtime runs are thread-safe)
    instances: int = DEFAULT_INSTANCES
    #: memory charged against the server's budget while loaded; 0 = MEMORY_FACTOR x the file size
    memory_bytes: int = 0
    version_policy: VersionPolicy = field(default_factory=VersionPolicy)
    #: one of RUNTIMES
    runtime: str = "onnxruntime"
    #: one of PRECISIONS; anything but fp32 needs runtime openvino
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime: {self.runtime!r} must be one of {', '.join(RUNTIMES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision: {self.precision!r} must be one of {', '.join(PRECISIONS)}")
        if self.precision != "fp32" and self.runtime != "openvino":
            raise ValueError(f"precision: {self.precision} needs runtime openvino (onnxruntime runs fp32)")
        for name in ("max_batch_size", "instances"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: {getattr(self, name)} must be at least 1")
        for name in ("max_queue_delay_us", "memory_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: {getattr(self, name)} must not be negative")

    @classmethod
    def parse(cls, config: dict[str, Any]) -> ServingConfig:
        """From a config.yaml mapping; absent keys take the defaults. ValueError says what is wrong."""
        values: dict[str, Any] = {}
        for name in ("max_batch_size", "max_queue_delay_us", "instances", "memory_bytes"):
            if config.get(name) is not None:
                value = config[name]
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError(f"{name}: {value!r} must be an integer")
                values[name] = value
        for name in ("runtime", "precision"):
            if config.get(name) is not None:
                values[name] = str(config[name])
        return cls(**values, version_policy=VersionPolicy.parse(config.get("version_policy")))

    def to_yaml(self) -> dict[str, Any]:
        return {
            "max_batch_size": self.max_batch_size,
            "max_queue_delay_us": self.max_queue_delay_us,
            "instances": self.instances,
            "memory_bytes": self.memory_bytes,
            "version_policy": self.version_policy.to_yaml(),
            "runtime": self.runtime,
            "precision": self.precision,
        }


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
    #: batching, instances, memory and version policy for `serve-models` (defaults when config.yaml has none)
    serving: ServingConfig = field(default_factory=ServingConfig)
    #: inputs besides the image that every run feeds zeros, with their shape per row (LSTR's `input_mask`)
    zero_inputs: tuple[tuple[str, tuple[int, ...]], ...] = ()
    #: the graph's file name in the version's folder: MODEL_FILE, or TFLITE_FILE for runtime litert
    model_file: str = MODEL_FILE

    @property
    def model_path(self) -> Path:
        return self.path / self.model_file

    @property
    def memory_bytes(self) -> int:
        """Memory charged for this version while loaded: the config's, else MEMORY_FACTOR x the file size."""
        if self.serving.memory_bytes:
            return self.serving.memory_bytes
        return MEMORY_FACTOR * self.model_path.stat().st_size

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


class InferenceBackend(Protocol):
    """Where a pipeline's batches run: in-process (models.onnx.OnnxModel, models.openvino.OpenVinoModel,
    chosen by `models.backends.load_backend`) or on a remote OIP v2 server (models.remote.RemoteModel)."""

    version: ModelVersion
    #: batches the caller may keep outstanding (1: `submit` returns a finished future)
    max_in_flight: int

    def submit(self, batch: npt.NDArray[np.float32]) -> Future[list[npt.NDArray[np.float32]]]:
        """Raw outputs of an NCHW float32 batch, each with leading dim N; the caller leaves `batch` alone
        until the future is done."""
        ...

    def infer(self, batch: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]: ...

    def close(self) -> None: ...
