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
from framequeue.api.openapi import MEANING, answers
from framequeue.endpoints.invocations import MAX_INLINE_BODY_BYTES, InvokeRequest
from framequeue.errors import EndpointNotFound, FrameQueueError, InvalidParams, PayloadTooLarge
from framequeue.records import InvokeAccepted, SageMakerError
from framequeue.tenants.auth import Principal

router = APIRouter(tags=["sagemaker"])
log = logging.getLogger("framequeue.api")

H = "x-amzn-sagemaker-"

#: the request headers botocore sends for InvokeEndpointAsync's members, and what each means
HEADERS = {
    "InputLocation": "the input's URI (s3://… or a key of this deployment's store); or send it as the body",
    "Inference-Id": "an id of your choosing for the invocation, echoed as InferenceId",
    "RequestTTLSeconds": "seconds the request may wait in the queue",
    "InvocationTimeoutSeconds": "seconds the job may run",
    "Custom-Attributes": "opaque, kept with the job",
    "Content-Type": "the input's media type",
    "Accept": "the output's media type asked for",
    "S3OutputPathExtension": "a suffix of the output's key",
    "Filename": "the output's file name",
}
SAGEMAKER_ERROR = {"model": SageMakerError, "headers": {"x-amzn-ErrorType": {"schema": {"type": "string"}}}}
OPENAPI = {
    "parameters": [{"name": f"X-Amzn-SageMaker-{name}", "in": "header", "required": False,
                    "description": meaning, "schema": {"type": "string"}} for name, meaning in HEADERS.items()],
    "requestBody": {"required": False,
                    "description": f"the input inline (at most {MAX_INLINE_BODY_BYTES} bytes) without InputLocation",
                    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
}
RESPONSES = {
    **answers({202: (InvokeAccepted, "queued (X-Amzn-SageMaker-OutputLocation, -FailureLocation; Location: the job)")},
              401, 403, 429),
    400: {**SAGEMAKER_ERROR, "description": "ValidationError: a bad request or an unknown endpoint"},
    500: {**SAGEMAKER_ERROR, "description": "InternalFailure"},
    503: {**SAGEMAKER_ERROR, "description": f"ServiceUnavailable: {MEANING[503]}"},
}


@router.post("/endpoints/{endpoint_name}/async-invocations", status_code=202, response_model=None,
             responses=RESPONSES, openapi_extra=OPENAPI, operation_id="InvokeEndpointAsync")
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
