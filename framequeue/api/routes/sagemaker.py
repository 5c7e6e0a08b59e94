"""SageMaker Runtime's InvokeEndpointAsync on the wire, so boto3's `sagemaker-runtime` client works
unchanged with `endpoint_url=` pointing here (botocore's service model, rest-json protocol):

    POST /endpoints/{EndpointName}/async-invocations
    X-Amzn-SageMaker-InputLocation, -Inference-Id, -RequestTTLSeconds, -InvocationTimeoutSeconds,
    -Custom-Attributes, -Content-Type, -Accept, -S3OutputPathExtension, -Filename; or an inline body
    -> 202 {"InferenceId": …}, X-Amzn-SageMaker-OutputLocation, X-Amzn-SageMaker-FailureLocation

Errors are the model's shapes, told apart by the `x-amzn-ErrorType` header as botocore reads them:
ValidationError (400: a bad request, an unknown endpoint, as SageMaker answers one), ServiceUnavailable
(503), InternalFailure (500). The request's SigV4 signature is not checked here: the API's own
authentication applies, with the key in an `X-Api-Key` header (boto3 adds one from an event hook, see the
README); the job belongs to the key's tenant. A request without a usable key answers 401 problem+json.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from framequeue.api.auth import SUBMIT_LIMITED
from framequeue.api.deps import invocations_of
from framequeue.endpoints.invocations import MAX_INLINE_BODY_BYTES, InvokeRequest
from framequeue.errors import EndpointNotFound, FrameQueueError, InvalidParams, PayloadTooLarge
from framequeue.tenants.auth import Principal

router = APIRouter(tags=["sagemaker"])
log = logging.getLogger("framequeue.api")

H = "x-amzn-sagemaker-"


@router.post("/endpoints/{endpoint_name}/async-invocations")
async def invoke_endpoint_async(
    request: Request, endpoint_name: str, caller: Principal = SUBMIT_LIMITED
) -> JSONResponse:
    try:
        req = InvokeRequest(
            endpoint=endpoint_name,
            input_location=request.headers.get(f"{H}inputlocation"),
            body=await _body(request),
            inference_id=request.headers.get(f"{H}inference-id"),
            ttl_s=_int(request, "RequestTTLSeconds", f"{H}requestttlseconds"),
            timeout_s=_int(request, "InvocationTimeoutSeconds", f"{H}invocationtimeoutseconds"),
            custom_attributes=request.headers.get(f"{H}custom-attributes"),
            content_type=request.headers.get(f"{H}content-type"),
            accept=request.headers.get(f"{H}accept"),
            output_path_extension=request.headers.get(f"{H}s3outputpathextension"),
            filename=request.headers.get(f"{H}filename"),
        )
        done = await run_in_threadpool(invocations_of(request).invoke, req, caller)
    except EndpointNotFound:
        # SageMaker answers an unknown endpoint with a ValidationError, not a 404
        return sagemaker_error(InvalidParams(f"Endpoint {endpoint_name} not found."))
    except FrameQueueError as exc:
        return sagemaker_error(exc)
    headers = {
        "X-Amzn-SageMaker-OutputLocation": done.output_location,
        "X-Amzn-SageMaker-FailureLocation": done.failure_location,
        "Location": f"/v1/jobs/{done.job['id']}",
    }
    return JSONResponse({"InferenceId": done.inference_id}, status_code=202, headers=headers)


def sagemaker_error(exc: FrameQueueError) -> JSONResponse:
    if exc.http_status < 500:
        kind, status = "ValidationError", 400
    elif exc.http_status == 503:
        kind, status = "ServiceUnavailable", 503
    else:
        kind, status = "InternalFailure", 500
        log.error("invoke_endpoint_async: %s: %s", exc.code, exc.message)
    body = {"__type": kind, "message": exc.message, "code": exc.code}
    return JSONResponse(body, status_code=status, headers={"x-amzn-ErrorType": kind})


async def _body(request: Request) -> bytes | None:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_INLINE_BODY_BYTES:
            raise PayloadTooLarge(f"Body: at most {MAX_INLINE_BODY_BYTES} bytes inline; pass InputLocation")
    return bytes(body) or None


def _int(request: Request, name: str, header: str) -> int | None:
    raw = request.headers.get(header)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidParams(f"{name}: an integer number of seconds") from None
