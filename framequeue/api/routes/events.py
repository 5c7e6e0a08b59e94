"""Server-sent events (text/event-stream): one job's changes, and all of a tenant's. The changes come from
framequeue.live; this module only encodes them (sse-starlette) and bounds how many streams are open."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from framequeue import live
from framequeue.api.auth import READ
from framequeue.api.deps import service_of
from framequeue.api.openapi import AUTH, answers
from framequeue.errors import TooManyRequests
from framequeue.tenants.auth import Principal

router = APIRouter(tags=["events"])

#: keep-alive comment every this many seconds on an idle stream (proxies and clients see it is alive)
KEEPALIVE_S = 10.0
#: open event streams per API process at most; the next one answers 429
MAX_STREAMS = 256
#: what an EventSource waits before reconnecting, milliseconds (the `retry:` field of the first event)
RETRY_MS = 1000
#: a client that takes no event for this long (it stopped reading) is disconnected, seconds
SEND_TIMEOUT_S = 30.0

_open = 0


@asynccontextmanager
async def _slot() -> AsyncIterator[None]:
    global _open
    _open += 1
    try:
        yield
    finally:
        _open -= 1


def _take_slot() -> None:
    if _open >= MAX_STREAMS:
        raise TooManyRequests(f"this API process has {MAX_STREAMS} event streams open; try again shortly",
                              retry_after_s=5.0)


def _encode(changes: AsyncIterator[live.Change]) -> AsyncIterator[ServerSentEvent]:
    async def events() -> AsyncIterator[ServerSentEvent]:
        async with _slot():
            first = True
            async for change in changes:
                yield ServerSentEvent(json.dumps(change.record), event=change.event, id=str(change.id),
                                      retry=RETRY_MS if first else None)
                first = False

    return events()


def _response(events: AsyncIterator[ServerSentEvent]) -> EventSourceResponse:
    # no-store: a stream is never cached; X-Accel-Buffering: nginx passes events on at once
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return EventSourceResponse(events, ping=KEEPALIVE_S, headers=headers, send_timeout=SEND_TIMEOUT_S)


#: a text/event-stream: `event:` the change, `id:` resumes it (Last-Event-ID), `data:` a JobRecord as JSON
STREAM = "text/event-stream"


@router.get("/v1/jobs/{job_id}/events", response_model=None, responses=answers(
    {200: (None, "the job's records as they change (data: a JobRecord), closing after its terminal one"),
     204: (None, "Last-Event-ID names the job's terminal record already")},
    *AUTH, 404, 429, 503, media_type=STREAM))
async def job_events(
    request: Request, job_id: str, last_event_id: str | None = Header(default=None), caller: Principal = READ
) -> Any:
    """The job's records as they change, ending with its terminal record (then the stream closes). 204 when
    Last-Event-ID names the terminal record already (an EventSource then stops reconnecting)."""
    service = service_of(request)
    now = await live.current(service, job_id, caller)  # 404 before any stream opens
    last = live.parse_event_id(last_event_id)
    if now.terminal and last is not None and last.digest == now.id.digest:
        return Response(status_code=204)
    _take_slot()
    return _response(_encode(live.follow_job(service, job_id, caller, last)))


@router.get("/v1/events", response_model=None, responses=answers(
    {200: (None, "changes of the tenant's jobs (data: a JobRecord), for as long as the client listens")},
    *AUTH, 422, 429, 503, media_type=STREAM))
async def tenant_events(
    request: Request, status: str | None = Query(default=None), last_event_id: str | None = Header(default=None),
    caller: Principal = READ,
) -> EventSourceResponse:
    """Changes of the tenant's jobs (for list views), for as long as the client listens."""
    statuses = live.parse_statuses(status)
    _take_slot()
    changes = live.follow_tenant(service_of(request), caller, statuses, live.parse_event_id(last_event_id))
    return _response(_encode(changes))
