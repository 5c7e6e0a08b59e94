"""One model version in an ONNX Runtime session (or OpenVINO, when its config says so), run with named
inputs; and its OIP tensor metadata.

The session comes from framequeue.models.onnx, so CUDA is used when this onnxruntime build has it and
CPU otherwise, on the same code path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from framequeue.errors import InvalidRequest
from framequeue.inference.batcher import Arrays
from framequeue.inference.tensors import ONNX_TYPES, datatype_of
from framequeue.models.version import ModelVersion

__all__ = ["OnnxRunner", "TensorSpec", "check_inputs", "read_specs"]


@dataclass(frozen=True)
class TensorSpec:
    name: str
    #: OIP datatype, e.g. FP32
    datatype: str
    #: -1 for a dynamic dimension; the first is the batch (-1 for every stored model)
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def _spec(name: str, onnx_type: str, shape: list[Any] | tuple[Any, ...]) -> TensorSpec:
    dims = tuple(d if isinstance(d, int) and d > 0 else -1 for d in shape)
    # served models take a batch: the first dimension is always variable for callers
    return TensorSpec(name, ONNX_TYPES.get(onnx_type, "FP32"), (-1, *dims[1:]) if dims else ())


def read_specs(version: ModelVersion) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Inputs and outputs of a stored version, read from the graph without loading it into a session."""
    import onnx
    from onnx import TensorProto

    graph = onnx.load(str(version.model_path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}

    def spec(value: Any) -> TensorSpec:
        tensor_type = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
        elem = TensorProto.DataType.Name(tensor_type.elem_type).lower()
        onnx_type = {"float": "tensor(float)", "double": "tensor(double)"}.get(elem, f"tensor({elem})")
        return _spec(value.name, onnx_type, dims)

    inputs = tuple(spec(v) for v in graph.input if v.name not in initializers)
    return inputs, tuple(spec(v) for v in graph.output)


def check_inputs(specs: tuple[TensorSpec, ...], inputs: Arrays, ref: str) -> None:
    """InvalidRequest unless `inputs` are exactly the model's, with matching datatypes and shapes."""
    expected = {s.name: s for s in specs}
    if set(inputs) != set(expected):
        raise InvalidRequest(f"{ref}: expected inputs {sorted(expected)}, got {sorted(inputs)}")
    for name, array in inputs.items():
        spec = expected[name]
        if datatype_of(array) != spec.datatype:
            raise InvalidRequest(f"input {name!r}: datatype {datatype_of(array)}, the model takes {spec.datatype}")
        if array.ndim != len(spec.shape) or any(
            d != -1 and d != a for d, a in zip(spec.shape[1:], array.shape[1:], strict=True)
        ):
            raise InvalidRequest(f"input {name!r}: shape {list(array.shape)}, the model takes {list(spec.shape)}")


class OnnxRunner:
    """`run(inputs) -> outputs` over an ONNX Runtime session; thread-safe (one session, many runs)."""

    def __init__(self, version: ModelVersion, threads: int = 1) -> None:
        self.version = version
        if version.serving.runtime == "litert":
            raise InvalidRequest(
                f"{version.ref} is a LiteRT (.tflite) model: serve-models serves ONNX models; it runs in-process"
            )
        if version.serving.runtime == "openvino":  # the config's choice; same graph, same specs
            from framequeue.models.openvino import OpenVinoModel

            model = OpenVinoModel.load(version, threads)
            self._run: Callable[[list[str], Arrays], list[Any]] = model.run
            self.inputs, self.outputs = read_specs(version)
            self._providers = [f"OpenVINO CPU {model.precision}"]
            return
        from framequeue.models.onnx import create_session

        session = create_session(version.model_path, threads)
        self._run = session.run
        self.inputs = tuple(_spec(i.name, i.type, i.shape) for i in session.get_inputs())
        self.outputs = tuple(_spec(o.name, o.type, o.shape) for o in session.get_outputs())
        self._providers = list(session.get_providers())

    @property
    def providers(self) -> list[str]:
        return list(self._providers)

    def run(self, inputs: Arrays) -> Arrays:
        names = [o.name for o in self.outputs]
        if self.version.batch_native:
            results = self._run(names, inputs)
        else:  # a graph with a fixed batch of 1 (its rewrite failed the check at `models add`)
            rows = next(iter(inputs.values())).shape[0]
            runs = [self._run(names, {k: v[i : i + 1] for k, v in inputs.items()}) for i in range(rows)]
            results = [np.concatenate([r[k] for r in runs]) for k in range(len(names))]
        return dict(zip(names, results, strict=True))
