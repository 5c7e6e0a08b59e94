"""How `serve-models` runs a stored version, read from its config.yaml: dynamic batching, parallel
executions, the memory it is charged, which versions are served, the runtime and its precision."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

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
