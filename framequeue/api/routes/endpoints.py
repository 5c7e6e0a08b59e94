"""Async endpoint routes (framequeue's own JSON API): create, read, list, delete. Endpoints are
deployment-wide, not a tenant's: managing them takes an admin key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from framequeue.api.auth import require
from framequeue.api.deps import invocations_of, service_of
from framequeue.api.problems import validation_problem
from framequeue.api.routes.jobs import read_json
from framequeue.api.schemas import EndpointIn
from framequeue.endpoints import Endpoint

router = APIRouter(prefix="/v1/endpoints", tags=["endpoints"], dependencies=[require("admin")])


@router.post("", status_code=201)
async def create(request: Request) -> JSONResponse:
    raw = await read_json(request, service_of(request).settings.max_json_bytes)
    try:
        body = EndpointIn.model_validate(raw)
    except ValidationError as exc:
        return validation_problem(exc.errors())
    created = await run_in_threadpool(invocations_of(request).create_endpoint, Endpoint(**body.model_dump()))
    return JSONResponse(created, status_code=201, headers={"Location": f"/v1/endpoints/{created['name']}"})


@router.get("")
async def list_endpoints(request: Request) -> dict[str, Any]:
    return await run_in_threadpool(invocations_of(request).list_endpoints)


@router.get("/{name}")
async def get(request: Request, name: str) -> dict[str, Any]:
    return await run_in_threadpool(invocations_of(request).get_endpoint, name)


@router.delete("/{name}", status_code=204)
async def delete(request: Request, name: str) -> Response:
    await run_in_threadpool(invocations_of(request).delete_endpoint, name)
    return Response(status_code=204)
