"""OIP v2 over HTTP (KServe v2 REST with Triton's binary tensor extension), as a Starlette app.

JSON tensors go in `data`; binary ones follow the JSON header in the body, which is then
`Inference-Header-Content-Length` bytes long, each input naming its `binary_data_size`. Outputs are
binary when the request asks (`binary_data` on an output, `binary_data_output` on the request).
Errors are `{"error": message}` with 400, 404, 503, 504 or 500.
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from framequeue.errors import FrameQueueError, InvalidRequest, PayloadTooLarge
from framequeue.inference.dataplane import InferenceService
from framequeue.inference.metrics import inference_registry
from framequeue.inference.tensors import from_json_data, from_raw, to_json_data, to_raw

__all__ = ["create_app"]

log = logging.getLogger(__name__)

HEADER_LENGTH: Final = "Inference-Header-Content-Length"
#: largest request body accepted (JSON header and binary tensors together)
DEFAULT_MAX_BODY_BYTES: Final = 512 * 1024**2


def _error(exc: Exception) -> JSONResponse:
    if isinstance(exc, FrameQueueError):
        # the OIP answers a malformed request with 400 whatever framequeue's finer 422 codes say
        status = 400 if isinstance(exc, InvalidRequest) else exc.http_status
        headers = {"Retry-After": "1"} if exc.retryable else None
        return JSONResponse({"error": exc.message}, status_code=status, headers=headers)
    log.exception("inference request failed")
    return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)


def _parse_infer(body: bytes, header_length: str | None) -> tuple[dict[str, Any], memoryview]:
    raw = memoryview(body)
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise InvalidRequest(f"{HEADER_LENGTH}: {header_length!r} is not an integer") from None
        if not 0 < n <= len(body):
            raise InvalidRequest(f"{HEADER_LENGTH}: {n} is outside the body's {len(body)} bytes")
        head, binary = raw[:n], raw[n:]
    else:
        head, binary = raw, raw[len(body) :]
    try:
        request = json.loads(bytes(head))
    except ValueError as exc:
        raise InvalidRequest(f"the inference request is not JSON: {exc}") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise InvalidRequest("the inference request needs an `inputs` list")
    return request, binary


def _decode_inputs(request: dict[str, Any], binary: memoryview) -> dict[str, Any]:
    arrays: dict[str, Any] = {}
    offset = 0
    for tensor in request["inputs"]:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise InvalidRequest("every input needs a `name`")
        name, datatype, shape = tensor["name"], tensor.get("datatype"), tensor.get("shape")
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise InvalidRequest(f"input {name!r}: binary_data_size {size!r} runs past the body")
            arrays[name] = from_raw(binary[offset : offset + size], str(datatype), shape, name)
            offset += size
        elif "data" in tensor:
            arrays[name] = from_json_data(tensor["data"], str(datatype), shape, name)
        else:
            raise InvalidRequest(f"input {name!r} has neither `data` nor `binary_data_size`")
    if offset != len(binary):
        raise InvalidRequest(f"{len(binary) - offset} bytes of binary data are claimed by no input")
    return arrays


def create_app(service: InferenceService, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Starlette:
    async def server_metadata(request: Request) -> Response:
        return JSONResponse(service.server_metadata())

    registry = inference_registry(lambda: service.manager.stats.batches)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        ok = service.ready()
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    async def model_metadata(request: Request) -> Response:
        p = request.path_params
        try:
            return JSONResponse(service.model_metadata(p["name"], p.get("version")))
        except Exception as exc:
            return _error(exc)

    async def model_ready(request: Request) -> Response:
        p = request.path_params
        try:
            service.version(p["name"], p.get("version"))
        except Exception as exc:
            return _error(exc)
        return JSONResponse({"name": p["name"], "ready": True})

    async def statistics(request: Request) -> Response:
        p = request.path_params
        try:
            return JSONResponse(service.statistics(p.get("name"), p.get("version")))
        except Exception as exc:
            return _error(exc)

    async def repository_index(request: Request) -> Response:
        return JSONResponse(
            [
                {"name": m.name, "version": str(m.version), "state": "READY"}
                for m in service.repository.list()
                if m.version in service.repository.served_versions(m.name)
            ]
        )

    async def infer(request: Request) -> Response:
        p = request.path_params
        try:
            length = request.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > max_body_bytes:
                raise PayloadTooLarge(f"the request body is over {max_body_bytes} bytes")
            body = await request.body()
            encoding = request.headers.get("content-encoding")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            payload, binary = _parse_infer(body, request.headers.get(HEADER_LENGTH.lower()))
            arrays = _decode_inputs(payload, binary)
            params = payload.get("parameters") or {}
            binary_default = bool(params.get("binary_data_output", False))
            requested = payload.get("outputs")
            binary_by_name: dict[str, bool] = {}
            names: list[str] | None = None
            if requested:
                names = [str(o.get("name")) for o in requested]
                for o in requested:
                    binary_by_name[str(o.get("name"))] = bool(
                        (o.get("parameters") or {}).get("binary_data", binary_default)
                    )
            model, results = await service.infer(p["name"], p.get("version"), arrays, names)
        except Exception as exc:
            return _error(exc)
        outputs: list[dict[str, Any]] = []
        blobs: list[bytes] = []
        for spec, array in results:
            tensor: dict[str, Any] = {"name": spec.name, "datatype": spec.datatype, "shape": list(array.shape)}
            if binary_by_name.get(spec.name, binary_default):
                blob = to_raw(array)
                tensor["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                tensor["data"] = to_json_data(array)
            outputs.append(tensor)
        answer: dict[str, Any] = {"model_name": model.name, "model_version": str(model.version), "outputs": outputs}
        if "id" in payload:
            answer["id"] = payload["id"]
        head = json.dumps(answer, separators=(",", ":")).encode()
        if not blobs:
            return Response(head, media_type="application/json")
        return Response(
            b"".join([head, *blobs]),
            media_type="application/octet-stream",
            headers={HEADER_LENGTH: str(len(head))},
        )

    model = "/v2/models/{name}"
    versioned = "/v2/models/{name}/versions/{version}"
    return Starlette(
        routes=[
            Route("/v2", server_metadata),
            Route("/metrics", metrics),
            Route("/v2/health/live", live),
            Route("/v2/health/ready", ready),
            Route("/v2/models/stats", statistics),
            Route("/v2/repository/index", repository_index, methods=["POST"]),
            Route(model, model_metadata),
            Route(versioned, model_metadata),
            Route(model + "/ready", model_ready),
            Route(versioned + "/ready", model_ready),
            Route(model + "/stats", statistics),
            Route(versioned + "/stats", statistics),
            Route(model + "/infer", infer, methods=["POST"]),
            Route(versioned + "/infer", infer, methods=["POST"]),
        ]
    )
