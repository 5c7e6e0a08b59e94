"""A stored model version: where its files lie and what its graph takes and gives."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from framequeue.models.serving import MEMORY_FACTOR, ServingConfig

#: file names inside <root>/<name>/<version>/: the graph (ONNX, or a LiteRT flatbuffer) and its config
MODEL_FILE = "model.onnx"
TFLITE_FILE = "model.tflite"
CONFIG_FILE = "config.yaml"
#: beside a facemesh model: the 468-vertex canonical face (Wavefront .obj, cm) its head pose is solved against
CANONICAL_FACE_FILE = "canonical_face_model.obj"
#: vertices of that face, one per FaceMesh landmark
CANONICAL_FACE_VERTICES = 468


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
