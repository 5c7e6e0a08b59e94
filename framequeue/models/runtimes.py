"""Where a version's batches run: the InferenceBackend protocol, and the in-process runtime a stored
version's config asks for (ONNX Runtime, OpenVINO or LiteRT)."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Protocol

import numpy as np
import numpy.typing as npt

from framequeue.models.version import ModelVersion

__all__ = ["InferenceBackend", "load_backend"]


class InferenceBackend(Protocol):
    """Where a pipeline's batches run: in-process (models.onnx.OnnxModel, models.openvino.OpenVinoModel,
    models.tflite.TfliteBackend, chosen by `load_backend`) or on a remote OIP v2 server
    (models.remote.RemoteModel)."""

    version: ModelVersion
    #: batches the caller may keep outstanding (1: `submit` returns a finished future)
    max_in_flight: int

    def submit(self, batch: npt.NDArray[np.float32]) -> Future[list[npt.NDArray[np.float32]]]:
        """Raw outputs of an NCHW float32 batch, each with leading dim N; the caller leaves `batch` alone
        until the future is done."""
        ...

    def infer(self, batch: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]: ...

    def close(self) -> None: ...


def load_backend(version: ModelVersion, threads: int) -> InferenceBackend:
    """`version.serving.runtime`'s backend with `threads` intra-op threads; each runtime is imported
    only when a model asks for it. (Returned as an InferenceBackend, each is checked against the protocol
    by mypy here; RemoteModel is, where pipelines.stages opens it.)"""
    if version.serving.runtime == "openvino":
        from framequeue.models.openvino import OpenVinoModel

        return OpenVinoModel.load(version, threads)
    if version.serving.runtime == "litert":
        from framequeue.models.tflite import TfliteBackend

        return TfliteBackend(version, threads)
    from framequeue.models.onnx import OnnxModel

    return OnnxModel.load(version, threads)
