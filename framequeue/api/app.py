"""The FastAPI app factory. Background loops (webhook dispatcher, reaper, retention sweeper) run beside it in
threads."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from framequeue import __version__
from framequeue.api import apidocs, openapi, problems, ui
from framequeue.api.auth import DEV_MODE_WARNING, Authenticator
from framequeue.api.routes import (
    endpoints,
    events,
    health,
    jobs,
    keys,
    model_endpoints,
    outputs,
    queue,
    sagemaker,
    uploads,
    webhooks,
)
from framequeue.api.schemas import REQUEST_MODELS
from framequeue.config import Settings, crashpoint
from framequeue.endpoints.invocations import Invocations
from framequeue.endpoints.registry import ModelEndpointRegistry
from framequeue.metrics import api_registry
from framequeue.notify.deliveries import DeliveryService
from framequeue.notify.outbox import Dispatcher
from framequeue.retention import Sweeper
from framequeue.runtime import open_runtime
from framequeue.service import JobService
from framequeue.tenants.keys import Keys

log = logging.getLogger("framequeue.api")

DESCRIPTION = (
    "Video inference jobs: upload a file, submit a job naming a pipeline, follow it (events), download its "
    "outputs. Every error is `application/problem+json` with a stable `code`. Send an API key as "
    "`Authorization: Bearer fq_…` or `X-Api-Key: fq_…` (while no key exists, the API is open)."
)


def create_app(settings: Settings, *, background: bool = True, workers_metrics_dir: Path | None = None) -> FastAPI:
    """The API; `workers_metrics_dir` (`framequeue up`'s) adds its workers' metrics to /metrics."""
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = open_runtime(settings)
        app.state.service = rt.service
        rt.service.output_route = outputs.output_path
        app.state.invocations = Invocations(rt.service)
        app.state.registry = ModelEndpointRegistry(rt.store, rt.models)
        app.state.deliveries = DeliveryService(rt.store, rt.service.owned)
        app.state.keys = Keys(rt.store)
        app.state.auth = Authenticator(rt.store, settings)
        if app.state.auth.open():
            log.warning(DEV_MODE_WARNING)
        else:
            log.info("authentication is on: every route but /healthz, /readyz, /metrics and the dashboard's "
                     "static files (/ui) needs an API key")
        if app.state.auth.limiter.enabled or settings.max_queued_per_tenant:
            log.info("per tenant: rate %g submits/s, burst %g (per API process; 0: off), quota %d queued jobs "
                     "(0: off)", app.state.auth.limiter.rate_per_s, app.state.auth.limiter.burst,
                     settings.max_queued_per_tenant)
        app.state.metrics = api_registry(rt.broker.stats, workers_metrics_dir, rt.store.lane_backlog,
                                         settings.metrics_top_tenants)
        stop = threading.Event()
        threads = []
        if background:
            dispatcher = Dispatcher(
                rt.store, timeout_s=settings.webhook_timeout_s, allow_private=settings.webhook_allow_private,
                write_document=rt.service.write_document,
                before_send=lambda: crashpoint(settings, "before_webhook"),
            )
            sweeper = Sweeper(rt.store, rt.objects, record_retention_s=settings.record_retention_s,
                              batch=settings.retention_batch)
            threads = [
                threading.Thread(target=dispatcher.run_forever, args=(stop,), name="webhooks", daemon=True),
                threading.Thread(target=_reap_forever, args=(rt.service, settings, stop), name="reaper", daemon=True),
                threading.Thread(target=sweeper.run_forever, args=(stop, settings.retention_sweep_interval_s),
                                 name="retention", daemon=True),
            ]
            for t in threads:
                t.start()
        try:
            yield
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=settings.webhook_timeout_s + 1)
            rt.close()

    # /docs and /redoc are apidocs' (assets served from the package, no CDN)
    app = FastAPI(title="framequeue", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    problems.install(app)
    app.include_router(health.router)
    app.include_router(uploads.router)
    app.include_router(jobs.router)
    app.include_router(outputs.router)
    app.include_router(events.router)
    app.include_router(endpoints.router)
    app.include_router(model_endpoints.router)
    app.include_router(keys.router)
    app.include_router(sagemaker.router)
    app.include_router(webhooks.router)
    app.include_router(queue.router)
    ui.mount(app)
    apidocs.mount(app)
    openapi.install(app, REQUEST_MODELS)
    return app


def _reap_forever(service: JobService, settings: Settings, stop: threading.Event) -> None:
    while not stop.wait(settings.reap_interval_s):
        try:
            service.reap()
        except Exception:
            log.exception("reaper failed")
