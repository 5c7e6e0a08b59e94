"""The in-process backend a stored version's config asks for: ONNX Runtime, OpenVINO or LiteRT."""

from __future__ import annotations

from framequeue.models.base import InferenceBackend, ModelVersion

__all__ = ["load_backend"]


def load_backend(version: ModelVersion, threads: int) -> InferenceBackend:
    """`version.serving.runtime`'s backend with `threads` intra-op threads; each runtime is imported
    only when a model asks for it."""
    if version.serving.runtime == "openvino":
        from framequeue.models.openvino import OpenVinoModel

        return OpenVinoModel.load(version, threads)
    if version.serving.runtime == "litert":
        from framequeue.models.tflite import TfliteBackend

        return TfliteBackend(version, threads)
    from framequeue.models.onnx import OnnxModel

    return OnnxModel.load(version, threads)
