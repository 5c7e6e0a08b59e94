"""Errors as application/problem+json (RFC 9457) with a stable `code`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from framequeue.errors import FrameQueueError, ServiceUnavailable, TooManyRequests, Unauthorized
from framequeue.tenants.ratelimit import retry_after

log = logging.getLogger("framequeue.api")

PROBLEM_JSON = "application/problem+json"
#: seconds a client should wait before retrying after a 503
RETRY_AFTER_S = 5


def problem(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": f"https://framequeue.dev/errors/{code}", "title": code.replace("_", " "), "status": status,
            "code": code, "detail": detail, **extra}
    headers = dict(headers or {})
    if status == 503:
        headers.setdefault("Retry-After", str(RETRY_AFTER_S))
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers or None)


def from_error(exc: FrameQueueError) -> JSONResponse:
    headers = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="framequeue"'
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(retry_after(exc.retry_after_s))
    return problem(exc.http_status, exc.code, exc.message, headers)


def validation_problem(errors: list[dict[str, Any]] | Any) -> JSONResponse:
    """400 that names each offending field, e.g. `params.foo: extra fields not permitted`."""
    return problem(400, "invalid_request", describe_invalid(errors))


def describe_invalid(errors: list[dict[str, Any]] | Any) -> str:
    """pydantic's errors as one line naming each offending field."""
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        kind = err.get("type", "")
        what = "unknown field" if kind == "extra_forbidden" else err.get("msg", "invalid")
        parts.append(f"{loc or 'body'}: {what}")
    return "; ".join(parts) or "invalid request body"


def install(app: FastAPI) -> None:
    @app.exception_handler(FrameQueueError)
    async def _fq(_: Request, exc: FrameQueueError) -> JSONResponse:
        return from_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_problem(exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, OSError | ConnectionError):
            return from_error(ServiceUnavailable("a backend is unavailable; try again shortly"))
        log.exception("unhandled error")
        return problem(500, "internal_error", "an internal error occurred; it has been logged")
