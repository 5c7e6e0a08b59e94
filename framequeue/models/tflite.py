"""LiteRT (TensorFlow Lite) for `.tflite` models such as MediaPipe's FaceMesh, on the CPU.

`ai-edge-litert` is imported only when such a model is loaded (`pip install 'framequeue[tflite]'`); it
works with numpy 2, unlike the `mediapipe` package, which is never needed.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from framequeue.models.version import ModelVersion

__all__ = ["TfliteBackend", "TfliteModel"]


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise ImportError("`.tflite` models need ai-edge-litert: pip install 'framequeue[tflite]'") from exc
    return Interpreter


class TfliteModel:
    """One `.tflite` graph with a single input; `infer(batch)` runs its rows one by one (these graphs
    have a fixed batch of 1) and returns every output with leading dim N. Thread-safe (one interpreter
    per calling thread)."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        self.path = Path(path)
        self._threads = max(1, threads)
        self._local = threading.local()
        interpreter = self._interpreter()
        (self._input,) = interpreter.get_input_details()
        self._outputs = interpreter.get_output_details()
        #: the input's shape with batch 1, e.g. (1, 192, 192, 3): NHWC as TFLite graphs take it
        self.input_shape: tuple[int, ...] = tuple(int(d) for d in self._input["shape"])
        self.input_name: str = str(self._input["name"])
        #: each output's shape with batch 1, in the graph's output order
        self.output_shapes: list[tuple[int, ...]] = [tuple(int(d) for d in o["shape"]) for o in self._outputs]

    def _interpreter(self) -> Any:
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            interpreter = _interpreter_class()(model_path=str(self.path), num_threads=self._threads)
            interpreter.allocate_tensors()
            self._local.interpreter = interpreter
        return interpreter

    def infer(self, batch: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        """Raw outputs (in the graph's output order) for a batch shaped N x input_shape[1:]."""
        if batch.shape[1:] != self.input_shape[1:] or len(batch) == 0:
            raise ValueError(f"infer takes N x {self.input_shape[1:]}, got shape {batch.shape}")
        interpreter = self._interpreter()
        runs = []
        for row in batch:
            interpreter.set_tensor(self._input["index"], np.ascontiguousarray(row[None], np.float32))
            interpreter.invoke()
            runs.append([np.array(interpreter.get_tensor(o["index"]), copy=True) for o in self._outputs])
        return [np.concatenate([r[k] for r in runs]) for k in range(len(self._outputs))]

    def close(self) -> None:
        self._local = threading.local()


class TfliteBackend:
    """A stored `.tflite` version as an InferenceBackend (runs each batch as it is submitted, one in flight)."""

    max_in_flight: int = 1

    def __init__(self, version: ModelVersion, threads: int = 1) -> None:
        self.version = version
        self._model = TfliteModel(version.model_path, threads)

    def submit(self, batch: npt.NDArray[np.float32]) -> Future[list[npt.NDArray[np.float32]]]:
        future: Future[list[npt.NDArray[np.float32]]] = Future()
        future.set_result(self._model.infer(batch))
        return future

    def infer(self, batch: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        return self._model.infer(batch)

    def close(self) -> None:
        self._model.close()
