"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from framequeue.api.auth import require
from framequeue.api.deps import service_of
from framequeue.api.openapi import AUTH, answers
from framequeue.pipelines.registry import available_pipelines
from framequeue.records import ModelList, PipelineList, Status

router = APIRouter()


@router.get("/healthz", tags=["health"], response_model=None, responses=answers({200: (Status, "the process answers")}))
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["health"], response_model=None,
            responses=answers({200: (Status, "the job store and the queue answer")}, 503))
async def readyz(request: Request) -> dict[str, str]:
    """Ready when the job store and the queue answer; otherwise 503 problem+json."""
    await run_in_threadpool(service_of(request).ready)
    return {"status": "ready"}


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """The queue as Prometheus sees it (framequeue.metrics): backlog, in flight, oldest age, dead letters."""
    body = await run_in_threadpool(generate_latest, request.app.state.metrics)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/pipelines", tags=["pipelines"], dependencies=[require("read")], response_model=None,
            responses=answers({200: (PipelineList, "the pipelines a job can name")}, *AUTH, 503))
async def pipelines() -> dict[str, list[str]]:
    return {"pipelines": available_pipelines()}


@router.get("/v1/models", tags=["models"], dependencies=[require("read")], response_model=None,
            responses=answers({200: (ModelList, "the model repository's versions")}, *AUTH, 503))
async def models(request: Request) -> dict[str, object]:
    repo = service_of(request).models
    return {"models": [
        {"name": m.name, "version": m.version, "format": m.format, "runtime": m.serving.runtime,
         "precision": m.serving.precision, "input_size_hw": list(m.input_size_hw), "classes": len(m.classes),
         "created_at": m.created_at}
        for m in repo.list()
    ]}
