"""Model endpoint registry routes: register where a (model, version) runs, list, reweigh or drain, remove.
The registry is deployment-wide: every route takes an admin key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from framequeue.api.auth import require
from framequeue.api.deps import registry_of, service_of
from framequeue.api.openapi import AUTH, JSON_BODY, answers, json_body
from framequeue.api.problems import validation_problem
from framequeue.api.routes.jobs import read_json
from framequeue.api.schemas import ModelEndpointIn, ModelEndpointPatch
from framequeue.records import ModelEndpointList, ModelEndpointRecord

router = APIRouter(prefix="/v1/model-endpoints", tags=["model-endpoints"], dependencies=[require("admin")])


@router.post("", status_code=201, response_model=None, openapi_extra=json_body(ModelEndpointIn),
             responses=answers({201: (ModelEndpointRecord, "registered (Location: the model endpoint)")},
                               *AUTH, *JSON_BODY, 409, 422, 503))
async def register(request: Request) -> JSONResponse:
    raw = await read_json(request, service_of(request).settings.max_json_bytes)
    try:
        body = ModelEndpointIn.model_validate(raw)
    except ValidationError as exc:
        return validation_problem(exc.errors())
    created = await run_in_threadpool(registry_of(request).register, body.model, body.version, body.url, body.weight)
    return JSONResponse(created, status_code=201, headers={"Location": f"/v1/model-endpoints/{created['id']}"})


@router.get("", response_model=None,
            responses=answers({200: (ModelEndpointList, "where each (model, version) runs")}, *AUTH, 503))
async def list_model_endpoints(request: Request, model: str | None = None) -> dict[str, Any]:
    return await run_in_threadpool(registry_of(request).list, model)


@router.patch("/{endpoint_id}", response_model=None, openapi_extra=json_body(ModelEndpointPatch),
              responses=answers({200: (ModelEndpointRecord, "updated")}, *AUTH, *JSON_BODY, 404, 422, 503))
async def update(request: Request, endpoint_id: str) -> Any:
    raw = await read_json(request, service_of(request).settings.max_json_bytes)
    try:
        body = ModelEndpointPatch.model_validate(raw)
    except ValidationError as exc:
        return validation_problem(exc.errors())
    registry = registry_of(request)
    return await run_in_threadpool(lambda: registry.update(endpoint_id, weight=body.weight, state=body.state))


@router.delete("/{endpoint_id}", status_code=204, response_model=None,
               responses=answers({204: (None, "removed")}, *AUTH, 404, 503))
async def remove(request: Request, endpoint_id: str) -> Response:
    await run_in_threadpool(registry_of(request).remove, endpoint_id)
    return Response(status_code=204)
