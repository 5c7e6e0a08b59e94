"""API keys of the caller's own tenant (admin scope): create (the key is in the answer, once), list,
revoke. Keys of other tenants are the operator's, through `framequeue keys`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from framequeue.api.auth import ADMIN
from framequeue.api.deps import keys_of, service_of
from framequeue.api.openapi import AUTH, JSON_BODY, answers, json_body
from framequeue.api.problems import validation_problem
from framequeue.api.routes.jobs import read_json
from framequeue.api.schemas import KeyIn
from framequeue.records import ApiKeyList, ApiKeyRecord, CreatedApiKey
from framequeue.tenants.auth import Principal

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.post("", status_code=201, response_model=None, openapi_extra=json_body(KeyIn),
             responses=answers({201: (CreatedApiKey, "created; `key` is shown this once")}, *AUTH, *JSON_BODY, 503))
async def create(request: Request, caller: Principal = ADMIN) -> JSONResponse:
    raw = await read_json(request, service_of(request).settings.max_json_bytes)
    try:
        body = KeyIn.model_validate(raw)
    except ValidationError as exc:
        return validation_problem(exc.errors())
    row, key = await run_in_threadpool(keys_of(request).create, caller.tenant, body.scope, body.name)
    return JSONResponse({**row.to_dict(), "key": key}, status_code=201,
                        headers={"Location": f"/v1/keys/{row.id}", "Cache-Control": "no-store"})


@router.get("", response_model=None, responses=answers({200: (ApiKeyList, "the tenant's keys")}, *AUTH, 503))
async def list_keys(request: Request, caller: Principal = ADMIN) -> dict[str, Any]:
    return {"keys": await run_in_threadpool(keys_of(request).list, caller.tenant)}


@router.post("/{key_id}/revoke", response_model=None,
             responses=answers({200: (ApiKeyRecord, "revoked")}, *AUTH, 404, 503))
async def revoke(request: Request, key_id: str, caller: Principal = ADMIN) -> dict[str, Any]:
    return await run_in_threadpool(keys_of(request).revoke, key_id, caller.tenant)
