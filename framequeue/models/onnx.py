"""ONNX Runtime sessions for stored models, and the batch-dimension rewrite done when a model is added."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from framequeue.errors import InvalidParams
from framequeue.models.version import ModelVersion

try:
    import onnxruntime as ort
except ImportError as exc:
    if exc.name != "onnxruntime":
        raise  # installed but broken: its own error says more
    # one of two wheels that cannot sit side by side, so framequeue depends on neither: an extra picks it
    raise InvalidParams(
        "runtime: ONNX Runtime is not installed: pip install 'framequeue[cpu]' "
        "(or 'framequeue[gpu]' for CUDA, never both)"
    ) from exc

log = logging.getLogger(__name__)

#: frames in the batch that checks a rewritten graph against single runs
CHECK_BATCH: Final = 4
#: largest absolute difference tolerated between a batched run and single runs
CHECK_ATOL: Final = 1e-4


def providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, CPU always."""
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def session_options(threads: int, log_severity: int = 2) -> ort.SessionOptions:
    """Fixed-size, non-spinning pools: decode, inference and encode share the job's cores."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # a spinning pool burns the cores the decoder and the encoder are waiting for
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = log_severity
    return opts


def create_session(model: Path | bytes, threads: int, log_severity: int = 2) -> ort.InferenceSession:
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, session_options(threads, log_severity), providers=providers())


def make_batch_dynamic(model: bytes) -> bytes | None:
    """The graph with its inputs' and outputs' first dim symbolic ("batch"), or None when not possible.

    Reshapes whose constant target shape starts with the static batch size 1 are turned into 0 ("copy
    the input's dim"), since YOLOX exports hard-code [1, 85, -1] and would otherwise mix frames.
    The result must still be checked numerically (`batch_matches`): other ops may hard-code the batch.
    Needs the `onnx` package (`pip install onnx`); without it models run as loops of batch-1 calls.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        log.warning("package onnx is not installed (pip install onnx): models keep a static batch of 1")
        return None
    try:
        proto = onnx.load_from_string(model)
        graph = proto.graph
        initializers = {i.name for i in graph.initializer}
        for value in [*graph.input, *graph.output]:
            if value.name in initializers:
                continue
            dims = value.type.tensor_type.shape.dim
            if not dims:
                return None
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
        # recorded intermediate shapes still say batch 1; ONNX Runtime infers them again
        del graph.value_info[:]
        by_name = {i.name: i for i in graph.initializer}
        for node in graph.node:
            if node.op_type != "Reshape" or node.input[1] not in by_name:
                continue
            target = numpy_helper.to_array(by_name[node.input[1]]).copy()
            if target.ndim == 1 and target.size > 1 and target[0] == 1:
                target[0] = 0
                by_name[node.input[1]].CopyFrom(numpy_helper.from_array(target, node.input[1]))
        onnx.checker.check_model(proto)
        rewritten: bytes = proto.SerializeToString()
        return rewritten
    except Exception as exc:  # any failure of the rewrite only means: keep batch-1 calls
        log.info("batch dimension cannot be made dynamic: %s", exc)
        return None


def zero_inputs(session: ort.InferenceSession) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The graph's inputs after the first (the image), each with its static shape per row; they are fed
    zeros (LSTR's `input_mask`). ValueError when one is not a float tensor of static shape."""
    extra = []
    for spec in session.get_inputs()[1:]:
        dims = spec.shape[1:]
        if spec.type != "tensor(float)" or not all(isinstance(d, int) and d > 0 for d in dims):
            raise ValueError(
                f"input {spec.name!r} ({spec.type} {spec.shape}): inputs besides the image must be float "
                f"tensors of static shape, fed zeros"
            )
        extra.append((spec.name, tuple(int(d) for d in dims)))
    return tuple(extra)


def with_zeros(
    feed: dict[str, npt.NDArray[np.float32]], zeros: tuple[tuple[str, tuple[int, ...]], ...], rows: int
) -> dict[str, npt.NDArray[np.float32]]:
    """`feed` plus a zero tensor of `rows` rows for each of `zeros`."""
    for name, shape in zeros:
        feed[name] = np.zeros((rows, *shape), np.float32)
    return feed


def batch_matches(
    single: ort.InferenceSession,
    batched: ort.InferenceSession,
    input_name: str,
    input_chw: tuple[int, int, int],
) -> bool:
    """Whether one run of CHECK_BATCH frames on `batched` equals as many runs of one frame on `single`."""
    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 255, (CHECK_BATCH, *input_chw)).astype(np.float32)
    zeros = zero_inputs(single)
    try:
        together = batched.run(None, with_zeros({input_name: batch}, zeros, CHECK_BATCH))
        apart = [single.run(None, with_zeros({input_name: batch[i : i + 1]}, zeros, 1)) for i in range(CHECK_BATCH)]
    except Exception as exc:  # a graph that cannot run a batch at all is the expected "no"
        log.info("batched run failed: %s", exc)
        return False
    for k, out in enumerate(together):
        expected = np.concatenate([a[k] for a in apart])
        if out.shape != expected.shape or not np.all(np.abs(out - expected) <= CHECK_ATOL):
            return False
    return True


#: a runtime's `run(output_names | None, {input name: array})`, as ONNX Runtime's and OpenVinoModel's
RunFn = Callable[[Any, dict[str, npt.NDArray[np.float32]]], Sequence[npt.NDArray[np.float32]]]


def infer_batch(run: RunFn, version: ModelVersion, batch: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
    """Raw outputs for an NCHW float32 batch through `run`, each with leading dim N: the whole batch at once
    when the model takes one, else frame by frame and concatenated."""
    n = len(batch)
    if batch.ndim != 4 or n == 0:
        raise ValueError(f"infer takes a non-empty NCHW batch, got shape {batch.shape}")
    name, zeros = version.input_name, version.zero_inputs
    if version.batch_native:
        outputs: Sequence[npt.NDArray[np.float32]] = run(None, with_zeros({name: batch}, zeros, n))
    else:
        runs = [run(None, with_zeros({name: batch[i : i + 1]}, zeros, 1)) for i in range(n)]
        outputs = [np.concatenate([r[k] for r in runs]) for k in range(len(runs[0]))]
    for out in outputs:
        # the invariant a batcher must hold: as many results as frames
        if out.shape[0] != n:
            raise RuntimeError(f"{version.ref}: output has leading dim {out.shape[0]} for {n} frames")
    return list(outputs)


class OnnxModel:
    """One stored model version in an ONNX Runtime session; `infer` takes N frames either way. An
    InferenceBackend that runs each batch as it is submitted (one in flight)."""

    max_in_flight: int = 1

    def __init__(self, version: ModelVersion, session: ort.InferenceSession) -> None:
        self.version = version
        self._session = session

    def submit(self, batch: npt.NDArray[np.float32]) -> Future[list[npt.NDArray[np.float32]]]:
        """Runs the batch now, in the caller's thread; the future is done when this returns."""
        future: Future[list[npt.NDArray[np.float32]]] = Future()
        future.set_result(self.infer(batch))
        return future

    def close(self) -> None:
        pass

    @classmethod
    def load(cls, version: ModelVersion, threads: int) -> OnnxModel:
        return cls(version, create_session(version.model_path, threads))

    def infer(self, batch: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        """Raw outputs for an NCHW float32 batch, each with leading dim N."""
        return infer_batch(self._session.run, self.version, batch)
