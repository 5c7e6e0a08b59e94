"""The connection between a worker and its broker is reset, blackholed past the lease, or slowed by 2 s
(a TCP fault proxy between them) mid-job: nothing is lost and the job ends in exactly one terminal state."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.acceptance.deployment import Deployment
from tests.conftest import require_shared
from tests.contract.backends import DEPLOYMENTS, IMPLEMENTED, cleanup
from tests.faults.conftest import LEASE_S
from tests.faults.tcpproxy import FaultProxy

pytestmark = pytest.mark.slow

NETWORK_BROKERS = sorted(n for n in ("postgres", "redis", "rabbitmq", "nats") if n in IMPLEMENTED)


def via(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = parts.netloc.replace(f"{host}:{parts.port}", f"127.0.0.1:{port}")
    return parts._replace(netloc=netloc).geturl()


@pytest.fixture(params=NETWORK_BROKERS or [pytest.param("none", marks=pytest.mark.skip("no network broker yet"))])
def proxied(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Deployment, FaultProxy]]:
    store_factory, queue_factory = DEPLOYMENTS[request.param]
    store_url, broker_url = store_factory(tmp_path), queue_factory(tmp_path)
    parts = urlsplit(broker_url)
    proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 0)
    dep = Deployment(tmp_path, lease_s=LEASE_S, heartbeat_s=1, reap_interval_s=1, drain_s=1, republish_after_s=2,
                     database_url=store_url, broker_url=broker_url)
    dep.register_yolox(require_shared("models", "yolox_nano"))
    dep.start("api", "api")
    dep.wait_ready()
    dep.start("w1", "worker", broker_url=via(broker_url, proxy.port))
    yield dep, proxy
    proxy.close()
    dep.stop()
    cleanup(store_url)
    cleanup(broker_url)


def run_with_fault(dep: Deployment, proxy: FaultProxy, video: Path, fault: str) -> dict[str, object]:
    job = dep.submit_file(video)
    dep.wait_for(job["id"], lambda r: r["status"] == "running" and r["progress"]["frames_done"] > 0)
    if fault == "reset":
        proxy.reset_all()
    elif fault == "blackhole":
        proxy.set_mode("blackhole")
        time.sleep(LEASE_S + 3)
        proxy.set_mode("pass")
        proxy.reset_all()  # the held connections are useless now: the clients must reconnect
    elif fault == "delay":
        proxy.set_mode("delay")
    record = dep.wait_done(job["id"], timeout_s=120)
    proxy.set_mode("pass")
    time.sleep(2)  # let any late commit or ack arrive: the terminal state must not change
    again = dep.client.job(job["id"])
    assert (again["status"], again["finished_at"], again["outputs"]) == (
        record["status"], record["finished_at"], record["outputs"])
    return record


@pytest.mark.parametrize("fault", ["reset", "blackhole", "delay"])
def test_worker_broker_link_faults(proxied: tuple[Deployment, FaultProxy], dashcam_video: Path, fault: str) -> None:
    dep, proxy = proxied
    record = run_with_fault(dep, proxy, dashcam_video, fault)
    assert record["status"] == "succeeded", record
    assert record["attempts"] in (1, 2)
    files = sorted(p.relative_to(dep.home / "objects").as_posix()
                   for p in (dep.home / "objects" / "outputs" / str(record["id"])).rglob("*") if p.is_file())
    assert sorted(record["outputs"].values()) == files  # type: ignore[union-attr]
    # the worker is still useful afterwards
    follow_up = dep.wait_done(dep.submit_file(dashcam_video, params={"sample_fps": 2})["id"], timeout_s=120)
    assert follow_up["status"] == "succeeded"
