"""OpenVINO (CPU) for stored models: the same model.onnx as ONNX Runtime, in fp32 or bf16.

`openvino` is imported only when a model's config asks for it (`pip install 'framequeue[openvino]'`).
bf16 takes effect only where the CPU has it (OPTIMIZATION_CAPABILITIES lists BF16); elsewhere the
model runs fp32 and a note is logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from framequeue.models.onnx import infer_batch
from framequeue.models.version import ModelVersion

__all__ = ["OpenVinoModel", "bf16_supported", "compile_model", "effective_precision"]

log = logging.getLogger(__name__)

#: framequeue precision -> OpenVINO INFERENCE_PRECISION_HINT
_HINTS: Final = {"fp32": "f32", "bf16": "bf16"}


def _openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise ImportError(
            "runtime openvino needs the openvino package: pip install 'framequeue[openvino]'"
        ) from exc
    return openvino


def bf16_supported(core: Any) -> bool:
    """Whether OpenVINO's CPU plugin can run bf16 on this machine (AVX-512 BF16 or AMX)."""
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def effective_precision(core: Any, precision: str) -> str:
    """`precision`, or fp32 (logged) when it is bf16 and this CPU has no bf16."""
    if precision == "bf16" and not bf16_supported(core):
        log.warning("this CPU has no bf16 (OPTIMIZATION_CAPABILITIES lacks BF16): running fp32 instead")
        return "fp32"
    return precision


def compile_model(
    model_path: Path, input_size_hw: tuple[int, int], batch_native: bool, threads: int, precision: str
) -> tuple[Any, str]:
    """(compiled CPU model, precision it runs at). Image inputs get their network size and, when the
    graph takes a batch, a dynamic first dimension; a batch-1 graph keeps batch 1."""
    ov = _openvino()
    core = ov.Core()
    model = core.read_model(str(model_path))
    shapes = {}
    for port in model.inputs:
        shape = port.get_partial_shape()
        dims = [shape[i] for i in range(shape.rank.get_length())]
        if not dims:
            continue
        dims[0] = ov.Dimension(-1) if batch_native else ov.Dimension(1)
        if len(dims) == 4 and (dims[2].is_dynamic or dims[3].is_dynamic):
            dims[2], dims[3] = ov.Dimension(input_size_hw[0]), ov.Dimension(input_size_hw[1])
        shapes[port.get_any_name()] = ov.PartialShape(dims)
    model.reshape(shapes)
    runs_at = effective_precision(core, precision)
    config = {
        "INFERENCE_NUM_THREADS": max(1, threads),
        "INFERENCE_PRECISION_HINT": _HINTS[runs_at],
        # one stream: a run uses all `threads` for one batch, as ONNX Runtime's intra-op pool does
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
    }
    return core.compile_model(model, "CPU", config), runs_at


class OpenVinoModel:
    """One stored model version compiled by OpenVINO for the CPU; `infer` takes N frames either way.
    An InferenceBackend that runs each batch as it is submitted (one in flight); thread-safe (one
    infer request per calling thread)."""

    max_in_flight: int = 1

    def __init__(self, version: ModelVersion, compiled: Any, precision: str) -> None:
        self.version = version
        #: the precision it really runs at (fp32 when bf16 was asked for on a CPU without it)
        self.precision = precision
        self._compiled = compiled
        self._output_names = [o.get_any_name() for o in compiled.outputs]
        self._local = threading.local()

    @classmethod
    def load(cls, version: ModelVersion, threads: int) -> OpenVinoModel:
        compiled, precision = compile_model(
            version.model_path, version.input_size_hw, version.batch_native, threads, version.serving.precision
        )
        return cls(version, compiled, precision)

    def run(
        self, names: Sequence[str] | None, inputs: Mapping[str, npt.NDArray[Any]]
    ) -> list[npt.NDArray[np.float32]]:
        """Outputs `names` (all, in graph order, when None) of one run on named inputs, as ONNX
        Runtime's `InferenceSession.run`."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        request.infer(dict(inputs))
        wanted = self._output_names if names is None else names
        return [np.array(request.get_tensor(name).data, copy=True) for name in wanted]

    def submit(self, batch: npt.NDArray[np.float32]) -> Future[list[npt.NDArray[np.float32]]]:
        """Runs the batch now, in the caller's thread; the future is done when this returns."""
        future: Future[list[npt.NDArray[np.float32]]] = Future()
        future.set_result(self.infer(batch))
        return future

    def infer(self, batch: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        """Raw outputs for an NCHW float32 batch, each with leading dim N."""
        return infer_batch(self.run, self.version, batch)

    def close(self) -> None:
        self._local = threading.local()
