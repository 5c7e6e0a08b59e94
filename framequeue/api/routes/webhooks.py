"""Webhook deliveries of the caller's tenant: replay one event; list and enable the URLs a 410 disabled."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from framequeue.api.auth import ADMIN, SUBMIT
from framequeue.api.deps import deliveries_of, service_of
from framequeue.api.openapi import AUTH, JSON_BODY, answers, json_body
from framequeue.api.problems import validation_problem
from framequeue.api.routes.jobs import read_json
from framequeue.api.schemas import EnableIn
from framequeue.records import Delivery, DisabledWebhookList, WebhookEnabled
from framequeue.tenants.auth import Principal

router = APIRouter(tags=["webhooks"])


@router.post("/v1/deliveries/{event_id}/replay", status_code=202, response_model=None,
             responses=answers({202: (Delivery, "queued to be delivered again now")}, *AUTH, 404, 422, 503))
async def replay(request: Request, event_id: str, caller: Principal = SUBMIT) -> dict[str, Any]:
    return await run_in_threadpool(deliveries_of(request).replay, event_id, caller)


@router.get("/v1/webhooks/disabled", response_model=None,
            responses=answers({200: (DisabledWebhookList, "URLs disabled by a 410 Gone")}, *AUTH, 503))
async def disabled(request: Request, caller: Principal = ADMIN) -> dict[str, Any]:
    return await run_in_threadpool(deliveries_of(request).disabled_webhooks, caller)


@router.post("/v1/webhooks/enable", response_model=None, openapi_extra=json_body(EnableIn),
             responses=answers({200: (WebhookEnabled, "enabled again")}, *AUTH, *JSON_BODY, 404, 503))
async def enable(request: Request, caller: Principal = ADMIN) -> dict[str, Any] | JSONResponse:
    raw = await read_json(request, service_of(request).settings.max_json_bytes)
    try:
        body = EnableIn.model_validate(raw)
    except ValidationError as exc:
        return validation_problem(exc.errors())
    return await run_in_threadpool(deliveries_of(request).enable_webhook, body.url, caller)
