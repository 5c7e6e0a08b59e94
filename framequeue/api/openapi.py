"""The OpenAPI document as the API really behaves: each route names its answers (framequeue.records) and the
statuses of its errors, all one problem+json shape; the request bodies the routes read themselves
(framequeue.api.schemas) are declared; and FastAPI's own 422 (its validation error shape) is dropped, since
problems.py answers a request that fails validation with a 400 problem.

Routes declare with `answers(...)`, `problems(...)` and `json_body(...)`; `install` shapes the document once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from framequeue.api.problems import PROBLEM_JSON
from framequeue.records import ErrorResponse

REF = "#/components/schemas/{model}"
#: what each error status means across the API; a route documents only the statuses it can answer
MEANING: dict[int, str] = {
    400: "invalid_request: a malformed body, header or query parameter (the fields are named)",
    401: "unauthorized: no usable API key (WWW-Authenticate: Bearer)",
    403: "forbidden: the key's scope is below the route's",
    404: "not found (another tenant's resource answers the same)",
    409: "conflict: the resource exists already, or the change is not allowed in its state",
    413: "payload_too_large: the body is over the server's limit",
    415: "unsupported_content_type: send application/json",
    416: "range_not_satisfiable (Content-Range: bytes */SIZE)",
    422: "the request is well formed but refers to something unusable (unknown pipeline or model, invalid "
         "params or key, a reused Idempotency-Key, a missing input, a disabled webhook)",
    429: "rate_limited or quota_exceeded (Retry-After says when to retry)",
    503: "service_unavailable: a backend (job store, queue, object store) does not answer (Retry-After)",
}
#: every route behind an API key: no usable key, and a key of too low a scope
AUTH = (401, 403)
#: a route that reads a JSON body itself (api.routes.jobs.read_json)
JSON_BODY = (400, 413, 415)
#: statuses that never carry a body
NO_BODY = (204, 304)
#: FastAPI's validation error shapes, never answered here (problems.py answers 400 instead)
FASTAPI_422 = ("HTTPValidationError", "ValidationError")


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` entries of a route's error statuses, all framequeue.records.ErrorResponse."""
    return {status: {"model": ErrorResponse, "description": MEANING[status]} for status in sorted(set(statuses))}


def answers(
    ok: dict[int, tuple[type[BaseModel] | None, str]], *errors: int, media_type: str | None = None
) -> dict[int | str, dict[str, Any]]:
    """`responses` for a route: its successful statuses with their model (None: no body) and description,
    then problems(*errors). `media_type` is for a non-JSON body (its schema: a byte string)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status, (model, description) in ok.items():
        entry: dict[str, Any] = {"description": description}
        if model is not None:
            entry["model"] = model
        elif media_type is not None and status not in NO_BODY:
            entry["content"] = {media_type: {"schema": {"type": "string", "format": "binary"}}}
        out[status] = entry
    out.update(problems(*errors))
    return out


def json_body(model: type[BaseModel], description: str = "") -> dict[str, Any]:
    """`openapi_extra` of a route that reads `model` as its JSON body (listed in schemas.REQUEST_MODELS)."""
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}}}


def install(app: FastAPI, request_models: Iterable[type[BaseModel]]) -> None:
    """Replace app.openapi with one that shapes FastAPI's document (see the module docstring)."""
    models = tuple(request_models)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description,
                              routes=app.routes)
            app.openapi_schema = shape(doc, models)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def shape(doc: dict[str, Any], request_models: tuple[type[BaseModel], ...]) -> dict[str, Any]:
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    _, defs = models_json_schema([(m, "validation") for m in request_models], ref_template=REF)
    schemas.update(defs.get("$defs", {}))
    problem_ref = REF.format(model=ErrorResponse.__name__)
    for path in doc.get("paths", {}).values():
        for op in path.values():
            responses: dict[str, Any] = op.get("responses", {})
            if _is_fastapi_422(responses.get("422")):
                del responses["422"]
            for status, response in responses.items():
                content = response.get("content", {})
                if len(content) > 1 and content.get("application/json") == {"schema": {}}:
                    del content["application/json"]  # FastAPI's default beside a route's real (stream) body
                json = content.get("application/json")
                if int(status) >= 400 and json is not None and json.get("schema", {}).get("$ref") == problem_ref:
                    content[PROBLEM_JSON] = content.pop("application/json")
    for name in FASTAPI_422:
        schemas.pop(name, None)
    return doc


def _is_fastapi_422(response: dict[str, Any] | None) -> bool:
    if response is None:
        return False
    ref: object = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
    return ref == REF.format(model="HTTPValidationError")
