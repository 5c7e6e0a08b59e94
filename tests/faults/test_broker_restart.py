"""A broker restarted mid-job, on a second broker instance of the test's own (Redis without persistence,
so the restart loses every message): nothing is lost, and no job ends twice."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.deployment import Deployment, free_port
from tests.conftest import require_shared
from tests.contract.backends import PG_DSN, cleanup, require_service

pytestmark = pytest.mark.slow


class RedisInstance:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout != b"PONG\n":
            assert time.monotonic() < deadline, "the second redis-server did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def redis_deployment(tmp_path: Path) -> Iterator[tuple[Deployment, RedisInstance]]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    require_service("postgres")
    redis = RedisInstance(tmp_path)
    redis.start()
    store_url = f"{PG_DSN}?schema=fq_restart_{free_port()}"
    dep = Deployment(tmp_path, lease_s=4, heartbeat_s=1, reap_interval_s=1, drain_s=1, republish_after_s=2,
                     republish_queued_after_s=3, database_url=store_url,
                     broker_url=f"redis://127.0.0.1:{redis.port}/0?queue=restart")
    dep.register_yolox(require_shared("models", "yolox_nano"))
    dep.start("api", "api")
    dep.wait_ready()
    yield dep, redis
    dep.stop()
    redis.stop()
    cleanup(store_url)


def test_queued_jobs_survive_a_broker_that_lost_its_messages(
    redis_deployment: tuple[Deployment, RedisInstance], dashcam_video: Path
) -> None:
    dep, redis = redis_deployment
    jobs = [dep.submit_file(dashcam_video, params={"sample_fps": 5}) for _ in range(2)]
    redis.stop()  # no worker has taken them: their messages are gone with the broker
    redis.start()
    dep.start("w1", "worker")
    for job in jobs:
        record = dep.wait_done(job["id"], timeout_s=90)
        assert record["status"] == "succeeded" and record["attempts"] == 1


def test_a_job_running_while_the_broker_restarts_ends_once(
    redis_deployment: tuple[Deployment, RedisInstance], dashcam_video: Path
) -> None:
    dep, redis = redis_deployment
    dep.start("w1", "worker")
    job = dep.submit_file(dashcam_video)
    dep.wait_for(job["id"], lambda r: r["status"] == "running" and r["progress"]["frames_done"] > 0)
    redis.stop()
    time.sleep(1)
    redis.start()
    record = dep.wait_done(job["id"], timeout_s=120)
    assert record["status"] == "succeeded" and record["attempts"] in (1, 2)
    time.sleep(5)  # a republished duplicate, if any, must be turned away, not run again
    again = dep.client.job(job["id"])
    assert (again["status"], again["attempts"], again["finished_at"]) == (
        "succeeded", record["attempts"], record["finished_at"])
    after = dep.wait_done(dep.submit_file(dashcam_video, params={"sample_fps": 2})["id"], timeout_s=90)
    assert after["status"] == "succeeded"
