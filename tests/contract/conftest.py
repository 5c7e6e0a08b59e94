"""Backends for the contract suites, built lazily per case so a missing service skips only its own case
locally and fails in CI."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from framequeue.backends import open_broker, open_jobstore, open_storage
from framequeue.brokers.base import Broker
from framequeue.jobs import Job
from framequeue.jobstore.base import JobStore
from framequeue.storage.base import ObjectStore

STORE_BACKENDS: dict[str, Callable[[Path], str]] = {
    "sqlite": lambda tmp: f"sqlite:///{tmp / 'fq.db'}",
}
BROKER_BACKENDS = STORE_BACKENDS
STORAGE_BACKENDS: dict[str, Callable[[Path], str]] = {
    "local": lambda tmp: (tmp / "objects").as_uri(),
}


def render(job: Job) -> bytes:
    return json.dumps({"type": f"job.{job.status.value}", "data": {"id": job.id}}).encode()


@pytest.fixture(params=sorted(STORE_BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    s = open_jobstore(STORE_BACKENDS[request.param](tmp_path), render)
    yield s
    s.close()


@pytest.fixture(params=sorted(BROKER_BACKENDS))
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    b = open_broker(BROKER_BACKENDS[request.param](tmp_path))
    yield b
    b.close()


@pytest.fixture(params=sorted(STORAGE_BACKENDS))
def objects(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return open_storage(STORAGE_BACKENDS[request.param](tmp_path))
