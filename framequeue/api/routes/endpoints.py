"""Async endpoint routes (framequeue's own JSON API): create, read, list, delete. An endpoint belongs to
the tenant that created it (another tenant's answers as missing); managing them takes an admin key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from framequeue.api.auth import ADMIN
from framequeue.api.deps import invocations_of, service_of
from framequeue.api.openapi import AUTH, JSON_BODY, answers, json_body
from framequeue.api.problems import validation_problem
from framequeue.api.routes.jobs import read_json
from framequeue.api.schemas import EndpointIn
from framequeue.endpoints.async_endpoints import Endpoint
from framequeue.records import EndpointList, EndpointRecord
from framequeue.tenants.auth import Principal

router = APIRouter(prefix="/v1/endpoints", tags=["endpoints"])


@router.post("", status_code=201, response_model=None, openapi_extra=json_body(EndpointIn),
             responses=answers({201: (EndpointRecord, "created (Location: the endpoint)")},
                               *AUTH, *JSON_BODY, 409, 422, 503))
async def create(request: Request, caller: Principal = ADMIN) -> JSONResponse:
    raw = await read_json(request, service_of(request).settings.max_json_bytes)
    try:
        body = EndpointIn.model_validate(raw)
    except ValidationError as exc:
        return validation_problem(exc.errors())
    created = await run_in_threadpool(invocations_of(request).create_endpoint, Endpoint(**body.model_dump()),
                                      caller)
    return JSONResponse(created, status_code=201, headers={"Location": f"/v1/endpoints/{created['name']}"})


@router.get("", response_model=None, responses=answers({200: (EndpointList, "the tenant's endpoints")}, *AUTH, 503))
async def list_endpoints(request: Request, caller: Principal = ADMIN) -> dict[str, Any]:
    return await run_in_threadpool(invocations_of(request).list_endpoints, caller)


@router.get("/{name}", response_model=None, responses=answers({200: (EndpointRecord, "the endpoint")}, *AUTH, 404, 503))
async def get(request: Request, name: str, caller: Principal = ADMIN) -> dict[str, Any]:
    return await run_in_threadpool(invocations_of(request).get_endpoint, name, caller)


@router.delete("/{name}", status_code=204, response_model=None,
               responses=answers({204: (None, "deleted")}, *AUTH, 404, 503))
async def delete(request: Request, name: str, caller: Principal = ADMIN) -> Response:
    await run_in_threadpool(invocations_of(request).delete_endpoint, name, caller)
    return Response(status_code=204)
