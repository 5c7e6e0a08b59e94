"""Versioned model repository on a filesystem: <root>/<name>/<version>/{model.onnx,config.yaml}.

A version folder is staged under a hidden name and renamed into place, so readers see either a
complete version or none, and two concurrent `add`s of one name get different versions. Weights are
only ever copied from a local file; nothing is downloaded.
"""

from __future__ import annotations

import builtins
import hashlib
import re
import shutil
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import yaml

from framequeue.errors import InvalidParams, UnknownModel
from framequeue.models.serving import MEMORY_FACTOR, ServingConfig
from framequeue.models.version import (
    CANONICAL_FACE_FILE,
    CANONICAL_FACE_VERTICES,
    CONFIG_FILE,
    MODEL_FILE,
    TFLITE_FILE,
    ModelVersion,
)

__all__ = ["NAME_PATTERN", "ModelRepository", "ModelVersion"]

#: model names: lower-case, safe as a folder name and in a URL
NAME_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: attempts to claim a version number when other adds race for the same name
_CLAIM_ATTEMPTS: Final = 100
#: a LiteRT (TensorFlow Lite) flatbuffer carries this identifier at bytes 4-8
_TFLITE_MAGIC: Final = b"TFL3"


class ModelRepository:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def add(
        self,
        name: str,
        source_path: Path,
        format: str,
        classes_path: Path | None,
        input_size_hw: tuple[int, int] | None = None,
        serving: ServingConfig | None = None,
        check_image: npt.NDArray[np.uint8] | None = None,
        canonical_face: Path | None = None,
    ) -> ModelVersion:
        """Copy an ONNX model in as the next version of `name`; InvalidParams says what to fix.

        `classes_path` may be None for face and lane formats (their one class is implied). A facemesh model is
        a `.tflite` file stored with `canonical_face`, the 468-vertex face its head poses are solved against.

        `serving` (batching, instances, memory, version policy, runtime, precision) is written into
        config.yaml, defaults included, so an operator edits it there. With runtime openvino the model
        is first run in ONNX Runtime fp32 and in OpenVINO at the chosen precision on `check_image`
        (a BGR frame; a deterministic pattern when None), refused when they differ beyond
        framequeue.models.accuracy's limits, and the measured deviation goes into `accuracy_check`.
        """
        # imported here: the API process validates params through this class without loading ONNX Runtime
        from framequeue.models.formats import (
            default_classes,
            get_format,
            get_result_format,
            is_landmark_format,
            is_result_format,
        )
        from framequeue.models.onnx import batch_matches, create_session, make_batch_dynamic, zero_inputs

        if not NAME_PATTERN.fullmatch(name):
            raise InvalidParams(
                f"name: {name!r} must match {NAME_PATTERN.pattern} (lower case, digits, _ and -)"
            )
        source_path = Path(source_path)
        if not source_path.is_file():
            raise InvalidParams(f"source_path: {source_path} is not a file")
        if is_landmark_format(format) or _is_tflite(source_path):
            return self._add_tflite(name, source_path, format, canonical_face)
        factory = get_result_format(format) if is_result_format(format) else get_format(format)
        if classes_path is not None:
            classes = _read_classes(Path(classes_path))
        elif (implied := default_classes(format)) is not None:
            classes = list(implied)
        else:
            raise InvalidParams(f"classes_path: a {format!r} model needs a classes file (one class name a line)")
        data = source_path.read_bytes()
        try:
            session = create_session(data, threads=1)
        except Exception as exc:  # onnxruntime raises its own pybind types for every kind of bad file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidParams(
                f"source_path: {source_path.name} is not an ONNX model that ONNX Runtime "
                f"can load ({first[:300]})"
            ) from exc
        image_input = session.get_inputs()[0]
        shape = image_input.shape
        if len(shape) != 4:
            raise InvalidParams(
                f"source_path: the model's first input {image_input.name!r} has shape {shape}; "
                f"an NCHW image input is required"
            )
        size_hw = _input_size(shape, input_size_hw)
        try:
            zeros = zero_inputs(session)
        except ValueError as exc:
            raise InvalidParams(f"source_path: {source_path.name}: {exc}") from exc
        factory(size_hw, len(classes)).check_outputs([o.shape for o in session.get_outputs()])

        channels = shape[1] if isinstance(shape[1], int) else 3
        candidate = data if not isinstance(shape[0], int) else make_batch_dynamic(data)
        batch_native = False
        if candidate is not None:
            try:
                batched = create_session(candidate, threads=1, log_severity=4)
                batch_native = batch_matches(session, batched, image_input.name, (channels, *size_hw))
            except Exception:  # a rewritten graph ONNX Runtime refuses: keep the original
                batch_native = False
        stored = candidate if batch_native and candidate is not None else data

        serving = serving or ServingConfig()
        config: dict[str, Any] = {
            "format": format,
            "input_name": image_input.name,
            "input_size_hw": list(size_hw),
            "batch_native": batch_native,
            **({"zero_inputs": {n: list(dims) for n, dims in zeros}} if zeros else {}),
            "classes": classes,
            "sha256": hashlib.sha256(stored).hexdigest(),
            "source_sha256": hashlib.sha256(data).hexdigest(),
            "source_name": source_path.name,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **serving.to_yaml(),
        }
        if not config["memory_bytes"]:
            # written out so an operator sees, and can correct, what the budget charges
            config["memory_bytes"] = MEMORY_FACTOR * len(stored)
        if serving.runtime != "onnxruntime":
            config["accuracy_check"] = _check_runtime(name, stored, config, check_image)
        return self._publish(name, stored, config)

    def _add_tflite(self, name: str, source_path: Path, format: str, canonical_face: Path | None) -> ModelVersion:
        """A `.tflite` model (LiteRT runs it): only landmark formats (FaceMesh) come as such."""
        from framequeue.models.formats import get_landmark_format, is_landmark_format
        from framequeue.models.tflite import TfliteModel

        if not is_landmark_format(format):
            raise InvalidParams(f"format: {source_path.name} is a .tflite model; only facemesh models come as .tflite")
        if not _is_tflite(source_path):
            raise InvalidParams(f"source_path: a {format!r} model is a LiteRT .tflite file; {source_path.name} is not")
        try:
            model = TfliteModel(source_path)
            shapes = model.output_shapes
        except ImportError as exc:
            raise InvalidParams(f"runtime: {exc}") from exc
        except Exception as exc:  # LiteRT raises ValueError/RuntimeError for files it cannot load
            raise InvalidParams(f"source_path: LiteRT cannot load {source_path.name} ({str(exc)[:300]})") from exc
        formatter = get_landmark_format(format)
        formatter.check_outputs(shapes)  # type: ignore[attr-defined]
        if len(model.input_shape) != 4:
            raise InvalidParams(f"source_path: the model's input has shape {model.input_shape}; NHWC is required")
        face = _read_canonical_face(canonical_face)
        data = source_path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        config: dict[str, Any] = {
            "format": format,
            "model_file": TFLITE_FILE,
            "input_name": model.input_name,
            "input_size_hw": [model.input_shape[1], model.input_shape[2]],
            "batch_native": False,
            "classes": ["face"],
            "sha256": digest,
            "source_sha256": digest,
            "source_name": source_path.name,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **ServingConfig(runtime="litert", max_batch_size=1).to_yaml(),
            "memory_bytes": MEMORY_FACTOR * len(data),
            "canonical_face": {"file": CANONICAL_FACE_FILE, "sha256": hashlib.sha256(face).hexdigest()},
        }
        return self._publish(name, data, config, TFLITE_FILE, {CANONICAL_FACE_FILE: face})

    def get(self, name: str, version: int | None = None) -> ModelVersion:
        """A stored version (the latest when `version` is None); UnknownModel when missing."""
        versions = self._versions(name) if NAME_PATTERN.fullmatch(name) else []
        if not versions:
            known = ", ".join(sorted({v.name for v in self.list()})) or "none"
            raise UnknownModel(f"no model named {name!r}; models: {known}")
        if version is None:
            return self._load(name, versions[-1])
        if version not in versions:
            raise UnknownModel(
                f"model {name!r} has no version {version}; versions: {', '.join(map(str, versions))}"
            )
        return self._load(name, version)

    def served_versions(self, name: str) -> builtins.list[int]:
        """Versions of `name` that its version policy serves (the newest version's config decides)."""
        versions = self._versions(name) if NAME_PATTERN.fullmatch(name) else []
        if not versions:
            return []
        return self._load(name, versions[-1]).serving.version_policy.select(versions)

    def get_served(self, name: str, version: int | None = None) -> ModelVersion:
        """A version the policy serves (the newest served when `version` is None); UnknownModel else."""
        served = self.served_versions(name)
        if not served:
            self.get(name)  # raises UnknownModel naming the known models
            raise UnknownModel(f"model {name!r} serves no version under its version_policy")
        if version is None:
            return self._load(name, served[-1])
        if version not in served:
            raise UnknownModel(
                f"model {name!r} version {version} is not served; served versions: "
                f"{', '.join(map(str, served))}"
            )
        return self._load(name, version)

    def list(self) -> list[ModelVersion]:
        """Every stored version, by name then version."""
        if not self.root.is_dir():
            return []
        names = sorted(p.name for p in self.root.iterdir() if p.is_dir() and NAME_PATTERN.fullmatch(p.name))
        return [self._load(n, v) for n in names for v in self._versions(n)]

    def _versions(self, name: str) -> builtins.list[int]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        return sorted(
            int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / CONFIG_FILE).is_file()
        )

    def _load(self, name: str, version: int) -> ModelVersion:
        path = self.root / name / str(version)
        config = yaml.safe_load((path / CONFIG_FILE).read_text(encoding="utf-8"))
        height, width = config["input_size_hw"]
        try:
            serving = ServingConfig.parse(config)
        except ValueError as exc:
            raise InvalidParams(f"{path / CONFIG_FILE}: {exc}") from exc
        return ModelVersion(
            name=name,
            version=version,
            path=path,
            format=config["format"],
            input_name=config["input_name"],
            input_size_hw=(int(height), int(width)),
            classes=tuple(config["classes"]),
            batch_native=bool(config["batch_native"]),
            sha256=config["sha256"],
            source_sha256=config["source_sha256"],
            created_at=str(config["created_at"]),
            serving=serving,
            zero_inputs=tuple(
                (str(n), tuple(int(d) for d in dims)) for n, dims in (config.get("zero_inputs") or {}).items()
            ),
            model_file=str(config.get("model_file", MODEL_FILE)),
        )

    def _publish(
        self,
        name: str,
        model: bytes,
        config: dict[str, Any],
        file_name: str = MODEL_FILE,
        extra_files: dict[str, bytes] | None = None,
    ) -> ModelVersion:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".staging-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            (staging / file_name).write_bytes(model)
            for extra_name, content in (extra_files or {}).items():
                (staging / extra_name).write_bytes(content)
            (staging / CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
            for _ in range(_CLAIM_ATTEMPTS):
                version = max(self._all_version_dirs(folder), default=0) + 1
                try:
                    # rename onto an existing non-empty folder fails, so a version is claimed once
                    staging.rename(folder / str(version))
                except OSError:
                    continue
                return self._load(name, version)
            raise RuntimeError(f"could not claim a version number for {name!r}")
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _all_version_dirs(folder: Path) -> builtins.list[int]:
        return [int(p.name) for p in folder.iterdir() if p.name.isdigit()]


def _check_runtime(
    name: str, model: bytes, config: dict[str, Any], image: npt.NDArray[np.uint8] | None
) -> dict[str, Any]:
    """The accuracy_check record of config's runtime against ONNX Runtime fp32; InvalidParams when it
    cannot run or is off by more than the limits."""
    from framequeue.models.accuracy import check_pattern, compare
    from framequeue.models.onnx import OnnxModel
    from framequeue.models.openvino import OpenVinoModel

    serving = ServingConfig.parse(config)
    with tempfile.TemporaryDirectory(prefix="fq-check-") as tmp:
        path = Path(tmp)
        (path / MODEL_FILE).write_bytes(model)
        height, width = config["input_size_hw"]
        version = ModelVersion(
            name=name, version=0, path=path, format=config["format"], input_name=config["input_name"],
            input_size_hw=(height, width), classes=tuple(config["classes"]),
            batch_native=config["batch_native"], sha256=config["sha256"],
            source_sha256=config["source_sha256"], created_at=config["created_at"], serving=serving,
            zero_inputs=tuple((n, tuple(d)) for n, d in (config.get("zero_inputs") or {}).items()),
        )
        try:
            candidate = OpenVinoModel.load(version, threads=1)
        except ImportError as exc:
            raise InvalidParams(f"runtime: {exc}") from exc
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses for graphs it cannot compile
            raise InvalidParams(f"runtime: OpenVINO cannot compile {config['source_name']}: {str(exc)[:300]}") from exc
        reference = OnnxModel.load(version, threads=1)
        report = compare(version, check_pattern() if image is None else image, reference, candidate)
    if not report.passed:
        raise InvalidParams(
            f"precision: OpenVINO {candidate.precision} differs from ONNX Runtime fp32 beyond the limits "
            f"({report.describe()}); use --precision fp32 or --runtime onnxruntime"
        )
    return {
        "reference": "onnxruntime fp32",
        "runtime": serving.runtime,
        "precision": candidate.precision,
        "input": "synthetic pattern" if image is None else "image",
        **report.to_yaml(),
    }


def _read_canonical_face(path: Path | None) -> bytes:
    """The canonical face .obj's bytes once it is checked to hold the 468 vertices FaceMesh predicts."""
    if path is None:
        raise InvalidParams(
            "canonical_face: a facemesh model needs the canonical face its landmarks fit "
            "(MediaPipe's canonical_face_model.obj): pass it with --canonical-face PATH"
        )
    if not Path(path).is_file():
        raise InvalidParams(f"canonical_face: {path} is not a file")
    data = Path(path).read_bytes()
    vertices = sum(1 for line in data.decode("utf-8", "replace").splitlines() if line.startswith("v "))
    if vertices != CANONICAL_FACE_VERTICES:
        raise InvalidParams(
            f"canonical_face: {Path(path).name} has {vertices} vertices ('v x y z' lines); "
            f"FaceMesh's canonical face has {CANONICAL_FACE_VERTICES}"
        )
    return data


def _is_tflite(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(8)[4:8] == _TFLITE_MAGIC


def _read_classes(path: Path) -> list[str]:
    if not path.is_file():
        raise InvalidParams(f"classes_path: {path} is not a file")
    classes = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not classes:
        raise InvalidParams(f"classes_path: {path.name} lists no class (one name a line)")
    duplicates = sorted({c for c in classes if classes.count(c) > 1})
    if duplicates:
        raise InvalidParams(
            f"classes_path: {path.name} repeats {', '.join(duplicates)}; names must be unique"
        )
    return classes


def _input_size(shape: list[Any], given_hw: tuple[int, int] | None) -> tuple[int, int]:
    static = isinstance(shape[2], int) and isinstance(shape[3], int)
    if given_hw is None:
        if not static:
            raise InvalidParams(
                f"input_size_hw: the model's input {shape} has a dynamic size; pass input_size_hw"
            )
        return (int(shape[2]), int(shape[3]))
    size_hw = (int(given_hw[0]), int(given_hw[1]))
    if min(size_hw) <= 0:
        raise InvalidParams(f"input_size_hw: {given_hw} must be positive")
    if static and size_hw != (shape[2], shape[3]):
        raise InvalidParams(f"input_size_hw: {given_hw} differs from the model's fixed input {shape[2:]}")
    return size_hw
