"""A submit while the broker or the job store is down answers 503 with Retry-After and leaves no job
behind (no orphan row that would run later although the client was told it failed)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.acceptance.deployment import Deployment
from tests.contract.backends import PG_DSN, REDIS_URL, cleanup, require_service
from tests.faults.tcpproxy import FaultProxy

pytestmark = pytest.mark.slow


def _submit(dep: Deployment, key: str) -> httpx.Response:
    return httpx.post(f"{dep.base_url}/v1/jobs", json={"pipeline": "noop", "input": {"key": key}}, timeout=60)


@pytest.fixture
def upload(tmp_path: Path) -> Path:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"x")
    return payload


@pytest.fixture
def broker_behind_proxy(tmp_path: Path) -> Iterator[tuple[Deployment, FaultProxy]]:
    require_service("redis")
    parts = urlsplit(REDIS_URL)
    proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    queue = f"fq_down_{int(time.time() * 1000)}"
    broker_url = f"redis://127.0.0.1:{proxy.port}/0?queue={queue}"
    dep = Deployment(tmp_path, lease_s=4, heartbeat_s=1, reap_interval_s=1, republish_after_s=1,
                     broker_url=broker_url)
    dep.start("api", "api")
    dep.wait_ready()
    yield dep, proxy
    dep.stop()
    proxy.close()
    cleanup(f"{REDIS_URL}?queue={queue}")


def test_a_submit_the_broker_refuses_answers_503_and_leaves_no_job(
    broker_behind_proxy: tuple[Deployment, FaultProxy], upload: Path
) -> None:
    dep, proxy = broker_behind_proxy
    key = dep.client.upload(upload)["key"]
    accepted = _submit(dep, key)
    assert accepted.status_code == 202
    proxy.reset_all()
    proxy.close()  # the broker is gone: connections are refused
    refused = _submit(dep, key)
    assert refused.status_code == 503, refused.text
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["code"] == "service_unavailable" and "nothing was created" in refused.json()["detail"]
    time.sleep(3)  # past republish_after_s and a few reaper passes: nothing may surface
    jobs = dep.client.jobs()["jobs"]
    assert [j["id"] for j in jobs] == [accepted.json()["id"]]


def test_a_batch_the_broker_refuses_answers_503_and_leaves_no_job(
    broker_behind_proxy: tuple[Deployment, FaultProxy], upload: Path
) -> None:
    dep, proxy = broker_behind_proxy
    key = dep.client.upload(upload)["key"]
    proxy.reset_all()
    proxy.close()  # the broker is gone: connections are refused
    jobs = [{"pipeline": "noop", "input": {"key": key}} for _ in range(5)]
    refused = httpx.post(f"{dep.base_url}/v1/jobs:batch", json={"jobs": jobs}, timeout=60)
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "service_unavailable" and "nothing was created" in refused.json()["detail"]
    time.sleep(3)  # past republish_after_s and a few reaper passes: nothing may surface
    assert dep.client.jobs()["jobs"] == []


@pytest.fixture
def store_behind_proxy(tmp_path: Path) -> Iterator[tuple[Deployment, FaultProxy, str]]:
    require_service("postgres")
    parts = urlsplit(PG_DSN)
    proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    schema = f"fq_down_{int(time.time() * 1000)}"
    store_url = f"postgresql://{parts.username or 'postgres'}@127.0.0.1:{proxy.port}{parts.path}?schema={schema}"
    dep = Deployment(tmp_path, lease_s=4, heartbeat_s=1, reap_interval_s=1, database_url=store_url,
                     broker_url=f"postgresql://{parts.username or 'postgres'}@127.0.0.1:{parts.port or 5432}"
                                f"{parts.path}?schema={schema}&queue={schema}")
    dep.start("api", "api")
    dep.wait_ready()
    yield dep, proxy, f"{PG_DSN}?schema={schema}"
    dep.stop()
    proxy.close()
    cleanup(f"{PG_DSN}?schema={schema}")


def test_a_submit_while_the_job_store_is_down_answers_503_and_creates_nothing(
    store_behind_proxy: tuple[Deployment, FaultProxy, str], upload: Path
) -> None:
    import psycopg

    dep, proxy, direct = store_behind_proxy
    key = dep.client.upload(upload)["key"]
    proxy.set_mode("blackhole")
    proxy.reset_all()  # the store's connections die; new ones hang
    refused = _submit(dep, key)
    assert refused.status_code == 503, refused.text
    assert int(refused.headers["retry-after"]) >= 1
    schema = direct.rsplit("schema=", 1)[1]
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        count = conn.execute(f'SELECT count(*) FROM "{schema}".jobs').fetchone()
    assert count is not None and count[0] == 0
