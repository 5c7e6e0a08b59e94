"""GET /v1/queue: the queue and the caller's running and recent jobs, as the dashboard draws them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from framequeue.api.auth import READ
from framequeue.api.deps import service_of
from framequeue.api.openapi import AUTH, answers
from framequeue.api.queue_view import queue_view
from framequeue.records import QueueView
from framequeue.tenants.auth import Principal

router = APIRouter(tags=["queue"])


@router.get("/v1/queue", response_model=None,
            responses=answers({200: (QueueView, "the queue and the tenant's running and recent jobs")}, *AUTH, 503))
async def queue(request: Request, caller: Principal = READ) -> dict[str, Any]:
    return await run_in_threadpool(queue_view, service_of(request), caller)
