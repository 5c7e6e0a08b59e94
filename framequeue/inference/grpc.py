"""OIP v2 over gRPC: the KServe v2 / Triton `inference.GRPCInferenceService` on a `grpc.aio` server.

The messages and the service stub come from tritonclient's generated modules (`tritonclient.grpc`):
the same wire proto as Triton's and KServe's, kept current by NVIDIA, with no protoc step at build
time. Tensors arrive as `raw_input_contents` (what tritonclient sends) or typed `contents`; outputs go
back as `raw_output_contents`. Errors map to NOT_FOUND, INVALID_ARGUMENT, UNAVAILABLE,
DEADLINE_EXCEEDED or INTERNAL, with the message as the details.
"""

from __future__ import annotations

import logging
from typing import Any, Final, NoReturn

import grpc
import numpy as np

from framequeue.errors import (
    FrameQueueError,
    InvalidRequest,
    JobTimeout,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)
from framequeue.inference.dataplane import InferenceService
from framequeue.inference.tensors import dtype_of, from_raw, to_raw

try:
    from tritonclient.grpc import service_pb2 as pb
    from tritonclient.grpc import service_pb2_grpc as pb_grpc
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the gRPC endpoint needs grpcio and tritonclient's proto modules: pip install 'framequeue[serve]'"
    ) from exc

__all__ = ["MAX_MESSAGE_BYTES", "InferenceServicer", "create_server"]

log = logging.getLogger(__name__)

#: grpc.aio.ServicerContext (grpcio ships no type hints)
Context = Any
#: largest request or response message (a batch of 8 frames of 640x640 FP32 is ~40 MB)
MAX_MESSAGE_BYTES: Final = 512 * 1024**2
#: typed `contents` field per datatype, for clients that do not send raw contents
_CONTENTS: Final = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


def status_of(exc: Exception) -> grpc.StatusCode:
    if isinstance(exc, NotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, InvalidRequest):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, PayloadTooLarge):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, ServiceUnavailable):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(exc, JobTimeout):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.INTERNAL


def _decode_inputs(request: Any) -> dict[str, Any]:
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidRequest(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
    arrays: dict[str, Any] = {}
    for i, tensor in enumerate(request.inputs):
        shape = list(tensor.shape)
        if raw:
            arrays[tensor.name] = from_raw(raw[i], tensor.datatype, shape, tensor.name)
            continue
        field = _CONTENTS.get(tensor.datatype)
        if field is None:
            raise InvalidRequest(f"input {tensor.name!r}: datatype {tensor.datatype!r} needs raw_input_contents")
        values = np.asarray(getattr(tensor.contents, field), dtype=dtype_of(tensor.datatype, tensor.name))
        if values.size != int(np.prod(shape, dtype=np.int64)):
            raise InvalidRequest(f"input {tensor.name!r}: {values.size} values for shape {shape}")
        arrays[tensor.name] = values.reshape(shape)
    return arrays


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
    def __init__(self, service: InferenceService) -> None:
        self.service = service

    async def ServerLive(self, request: Any, context: Context) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Context) -> Any:
        return pb.ServerReadyResponse(ready=self.service.ready())

    async def ModelReady(self, request: Any, context: Context) -> Any:
        return pb.ModelReadyResponse(ready=self.service.model_ready(request.name, request.version or None))

    async def ServerMetadata(self, request: Any, context: Context) -> Any:
        return pb.ServerMetadataResponse(**self.service.server_metadata())

    async def ModelMetadata(self, request: Any, context: Context) -> Any:
        try:
            meta = self.service.model_metadata(request.name, request.version or None)
        except Exception as exc:
            await self._abort(context, exc)
        tensors = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[tensors(**t) for t in meta["inputs"]],
            outputs=[tensors(**t) for t in meta["outputs"]],
        )

    async def ModelStatistics(self, request: Any, context: Context) -> Any:
        try:
            stats = self.service.statistics(request.name or None, request.version or None)
        except Exception as exc:
            await self._abort(context, exc)
        rows = []
        for row in stats["model_stats"]:
            infer = {k: pb.StatisticDuration(**v) for k, v in row["inference_stats"].items()}
            batches = [
                pb.InferBatchStatistics(
                    batch_size=b["batch_size"], compute_infer=pb.StatisticDuration(**b["compute_infer"])
                )
                for b in row["batch_stats"]
            ]
            rows.append(
                pb.ModelStatistics(
                    name=row["name"],
                    version=row["version"],
                    last_inference=row["last_inference"],
                    inference_count=row["inference_count"],
                    execution_count=row["execution_count"],
                    inference_stats=pb.InferStatistics(**infer),
                    batch_stats=batches,
                )
            )
        return pb.ModelStatisticsResponse(model_stats=rows)

    async def ModelInfer(self, request: Any, context: Context) -> Any:
        try:
            arrays = _decode_inputs(request)
            names = [o.name for o in request.outputs] or None
            model, results = await self.service.infer(request.model_name, request.model_version or None, arrays, names)
        except Exception as exc:
            await self._abort(context, exc)
        response = pb.ModelInferResponse(model_name=model.name, model_version=str(model.version), id=request.id)
        for spec, array in results:
            response.outputs.add(name=spec.name, datatype=spec.datatype, shape=list(array.shape))
            response.raw_output_contents.append(to_raw(array))
        return response

    @staticmethod
    async def _abort(context: Context, exc: Exception) -> NoReturn:
        if not isinstance(exc, FrameQueueError):
            log.exception("gRPC request failed")
        message = exc.message if isinstance(exc, FrameQueueError) else f"internal error: {type(exc).__name__}: {exc}"
        await context.abort(status_of(exc), message)
        raise AssertionError("context.abort raises")  # pragma: no cover


def create_server(service: InferenceService, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    """A gRPC server (not started) with the inference service on host:port; port 0 picks one."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(service), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"gRPC cannot listen on {host}:{port}")
    return server, bound
