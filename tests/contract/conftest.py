"""Backends for the contract suites, built lazily per case so a missing service skips only its own case
locally and fails in CI."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from framequeue.brokers import open_broker
from framequeue.brokers.base import Broker
from framequeue.jobs import Job, JobStatus
from framequeue.jobstore import JobStore, open_jobstore
from framequeue.storage import open_storage
from framequeue.storage.base import ObjectStore
from tests.contract.backends import BROKERS, IMPLEMENTED, STORAGES, STORES, cleanup, with_options


def _params(names: dict[str, object]) -> list[str]:
    return sorted(n for n in names if n in IMPLEMENTED)


#: the suites' clock starts here (epoch seconds); stores take every time from their callers
T0 = 1_000_000.0
LEASE_S = 120.0


def new_job(job_id: str = "job-1", **kw: object) -> Job:
    """A queued job as a submit makes it, with `kw` replacing fields."""
    job = Job(
        id=job_id, pipeline="detect", pipeline_version="1", input_key="uploads/x/in.mp4",
        params={"sample_fps": 5}, status=JobStatus.QUEUED, created_at_s=T0, updated_at_s=T0,
        expires_at_s=T0 + 3600, timeout_s=900, max_attempts=3,
    )
    return replace(job, **kw)  # type: ignore[arg-type]


def render(job: Job) -> bytes:
    return json.dumps({"type": f"job.{job.status.value}", "data": {"id": job.id}}).encode()


@pytest.fixture(params=_params(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    url = STORES[request.param](tmp_path)
    s = open_jobstore(url, render)
    yield s
    s.close()
    cleanup(url)


@pytest.fixture(params=_params(BROKERS))
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = with_options(BROKERS[request.param](tmp_path), max_deliveries=3)
    yield url
    cleanup(url)


@pytest.fixture
def make_broker(broker_url: str) -> Iterator[Callable[[], Broker]]:
    """Opens as many brokers on the same queue as a test needs (competing consumers); closes them all."""
    opened: list[Broker] = []

    def make() -> Broker:
        b = open_broker(broker_url)
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.close()


@pytest.fixture
def broker(make_broker: Callable[[], Broker]) -> Broker:
    return make_broker()


@pytest.fixture(params=_params(STORAGES))
def objects(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "s3":
        request.getfixturevalue("moto_server")  # one server for the session, stopped at its end
    url = STORAGES[request.param](tmp_path)
    yield open_storage(url)
    cleanup(url)
