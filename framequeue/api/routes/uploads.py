"""POST /v1/uploads: stream a file into the object store, never whole in memory."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from framequeue.api.auth import SUBMIT_LIMITED
from framequeue.api.deps import service_of
from framequeue.api.openapi import AUTH, answers
from framequeue.errors import InvalidRequest, PayloadTooLarge
from framequeue.records import Upload
from framequeue.tenants.auth import Principal

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])


class _TooLarge(Exception):
    pass


#: the file is the raw request body (any content type), streamed
BODY = {"requestBody": {"required": True, "description": "the file's bytes",
                        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


@router.post("", status_code=201, response_model=None, openapi_extra=BODY,
             responses=answers({201: (Upload, "stored: pass `key` as a job's input.key")},
                               *AUTH, 400, 413, 422, 429, 503))
async def upload(
    request: Request,
    filename: str | None = Query(default=None, max_length=255),
    caller: Principal = SUBMIT_LIMITED,
) -> JSONResponse:
    service = service_of(request)
    limit = service.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"uploads are limited to {limit} bytes")
    key = service.upload_key(filename, caller)
    size = 0
    try:
        with service.open_upload(key) as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _TooLarge
                await run_in_threadpool(fh.write, chunk)
            if size == 0:
                raise InvalidRequest("the upload is empty; send the file as the request body")
    except _TooLarge:
        raise PayloadTooLarge(f"uploads are limited to {limit} bytes") from None
    body: dict[str, Any] = {"key": key, "size_bytes": size, "url": service.objects.url(key)}
    return JSONResponse(body, status_code=201)
