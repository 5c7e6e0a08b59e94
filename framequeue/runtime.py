"""Wires settings to backends once, for the API, the worker and the CLI."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from framequeue.brokers import open_broker
from framequeue.brokers.base import Broker
from framequeue.config import Settings
from framequeue.jobs import Job, failure_key, output_prefix
from framequeue.jobstore import JobStore, open_jobstore
from framequeue.models.repository import ModelRepository
from framequeue.notify.events import render_event
from framequeue.notify.webhooks import generate_secret
from framequeue.service import JobService
from framequeue.storage import open_storage
from framequeue.storage.base import ObjectStore
from framequeue.storage.locations import Locations


@dataclass
class Runtime:
    settings: Settings
    store: JobStore
    broker: Broker
    objects: ObjectStore
    models: ModelRepository
    service: JobService

    def close(self) -> None:
        self.broker.close()
        self.store.close()


def open_runtime(settings: Settings) -> Runtime:
    objects = open_storage(settings.storage_url)

    def render(job: Job) -> bytes:
        """A job's event payload, with the locations of this deployment's object store."""
        return render_event(
            job, output_location=objects.url(output_prefix(job.id)), failure_location=objects.url(failure_key(job.id)),
            now_s=time.time(),
        )

    store = open_jobstore(settings.database_url, render)
    broker = open_broker(settings.broker_url, settings.low_max_wait_s, settings.lanes)
    models = ModelRepository(Path(settings.model_repo))
    locations = Locations(objects, settings.storage_url)
    service = JobService(
        settings, store, broker, objects, models, webhook_secret=webhook_secret(settings), locations=locations
    )
    return Runtime(settings, store, broker, objects, models, service)


def webhook_secret(settings: Settings) -> str:
    """The server-wide webhook secret: FQ_WEBHOOK_SECRET, else one generated once into <home>/webhook_secret."""
    if settings.webhook_secret:
        return settings.webhook_secret
    path = settings.home / "webhook_secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    settings.home.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".webhook_secret.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(generate_secret() + "\n")
    try:
        os.link(tmp, path)  # atomic and refuses to replace: the first process of the deployment wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()
