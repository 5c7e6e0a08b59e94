"""The protocol-neutral inference service both transports call: health, metadata, statistics, infer.

Versions come from the repository under each model's version policy; a request naming no version gets
the newest served one. Errors are framequeue's: NotFound (unknown model or version), InvalidRequest,
ServiceUnavailable (no memory yet, queue full), JobTimeout (not started in time).
"""

from __future__ import annotations

from typing import Any, Final

from framequeue.errors import InvalidRequest, NotFound, UnknownModel
from framequeue.inference.batcher import Arrays, BatchStats
from framequeue.inference.manager import ModelManager
from framequeue.inference.runner import TensorSpec, check_inputs, read_specs
from framequeue.models.repository import ModelRepository
from framequeue.models.version import ModelVersion

__all__ = ["SERVER_NAME", "InferenceService"]

SERVER_NAME: Final = "framequeue"
#: OIP / Triton extensions this server implements
EXTENSIONS: Final = ("binary_tensor_data", "statistics")
PLATFORM: Final = "onnxruntime_onnx"


class InferenceService:
    def __init__(self, repository: ModelRepository, manager: ModelManager, timeout_s: float | None = None) -> None:
        self.repository = repository
        self.manager = manager
        #: a request not started within this many seconds fails (None: waits as long as its caller)
        self.timeout_s = timeout_s
        self._specs: dict[str, tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]] = {}

    def server_metadata(self) -> dict[str, Any]:
        from framequeue import __version__

        return {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}

    def ready(self) -> bool:
        return self.repository.root.is_dir()

    def version(self, name: str, version: str | None = None) -> ModelVersion:
        """A served version; NotFound for an unknown model or a version it does not serve."""
        number: int | None = None
        if version:
            if not version.isdigit():
                raise NotFound(f"model {name!r} version {version!r} not found: versions are integers")
            number = int(version)
        try:
            return self.repository.get_served(name, number)
        except UnknownModel as exc:
            raise NotFound(f"Request for unknown model: {name!r} not found ({exc.message})") from None

    def model_ready(self, name: str, version: str | None = None) -> bool:
        """Whether the version is served: it loads on first use, so a served version is ready to take requests."""
        try:
            self.version(name, version)
        except NotFound:
            return False
        return True

    def specs(self, model: ModelVersion) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        if model.ref not in self._specs:
            self._specs[model.ref] = read_specs(model)
        return self._specs[model.ref]

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        model = self.version(name, version)
        inputs, outputs = self.specs(model)
        versions = [str(model.version)] if version else [str(v) for v in self.repository.served_versions(name)]
        return {
            "name": name,
            "versions": versions,
            "platform": PLATFORM,
            "inputs": [s.to_dict() for s in inputs],
            "outputs": [s.to_dict() for s in outputs],
        }

    async def infer(
        self, name: str, version: str | None, inputs: Arrays, outputs: list[str] | None = None
    ) -> tuple[ModelVersion, list[tuple[TensorSpec, Any]]]:
        """The requested outputs (all when `outputs` is None) of one request, in the model's order."""
        model = self.version(name, version)
        input_specs, output_specs = self.specs(model)
        check_inputs(input_specs, inputs, model.ref)
        known = {s.name for s in output_specs}
        if outputs is not None and (unknown := [o for o in outputs if o not in known]):
            raise InvalidRequest(f"{model.ref}: unknown outputs {unknown}; outputs are {sorted(known)}")
        async with self.manager.use(model) as loaded:
            assert loaded.batcher is not None  # set before `use` yields
            results = await loaded.batcher.submit(inputs, self.timeout_s)
        wanted = [s for s in output_specs if outputs is None or s.name in outputs]
        return model, [(s, results[s.name]) for s in wanted]

    def statistics(self, name: str | None = None, version: str | None = None) -> dict[str, Any]:
        """Triton's statistics extension: per served version, requests, executions and times."""
        models = [self.version(name, version)] if name else self.repository.list()
        rows = []
        for model in models:
            stats = self.manager.stats.batches.get(model.ref, BatchStats())
            rows.append(
                {
                    "name": model.name,
                    "version": str(model.version),
                    "last_inference": stats.last_inference_ns // 1_000_000,
                    "inference_count": stats.rows,
                    "execution_count": stats.executions,
                    "inference_stats": {
                        "success": {"count": stats.requests, "ns": stats.queue_ns + stats.compute_ns},
                        "fail": {"count": stats.failed + stats.timed_out, "ns": 0},
                        "queue": {"count": stats.requests, "ns": stats.queue_ns},
                        "compute_infer": {"count": stats.executions, "ns": stats.compute_ns},
                    },
                    "batch_stats": [
                        {"batch_size": size, "compute_infer": {"count": count, "ns": 0}}
                        for size, count in sorted(stats.batch_sizes.items())
                    ],
                }
            )
        return {"model_stats": rows}
