"""Retention against a real `framequeue up`, on the local object store and on S3 (moto): a finished job's
files vanish and its record says when; a running job's files are untouched; `framequeue purge --dry-run`
lists without deleting and `framequeue purge --before` deletes; the record itself goes later (GET 404)."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from framequeue.errors import InvalidParams, JobNotFound
from framequeue.storage import open_storage
from framequeue.storage.base import ObjectStore
from tests import s3server
from tests.acceptance.deployment import Deployment

pytestmark = pytest.mark.slow

RECORD_RETENTION_S = 15


def _storage_url(kind: str) -> str:
    if kind == "local":
        return ""
    s3server.require_s3()
    return (f"s3://{s3server.ACCESS_KEY}:{s3server.SECRET_KEY}@{s3server.BUCKET}/fq-{uuid.uuid4().hex[:8]}"
            f"?endpoint={s3server.endpoint()}&region={s3server.REGION}")


@pytest.fixture(params=["local", "s3"])
def dep(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    storage = _storage_url(request.param)
    extra = {"storage_url": storage} if storage else {}
    d = Deployment(tmp_path, lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2, retention_s=1,
                   retention_sweep_interval_s=0.3, record_retention_s=RECORD_RETENTION_S, **extra)
    d.start("up", "up", "--workers", "2")
    d.wait_ready()
    yield d
    d.stop()


def _objects(dep: Deployment) -> ObjectStore:
    return open_storage(dep.env.get("FQ_STORAGE_URL") or f"file://{dep.home.resolve() / 'objects'}")


def _until(what: str, check: Callable[[], Any], timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return value


def test_files_expire_running_jobs_are_untouched_and_records_go(dep: Deployment, tmp_path: Path) -> None:
    objects = _objects(dep)
    video = tmp_path / "in.bin"
    video.write_bytes(b"x" * 1000)
    for bad in (-1, 10**12):
        with pytest.raises(InvalidParams, match="retention_s"):
            dep.submit_file(video, pipeline="noop", retention_s=bad)
    running = dep.submit_file(video, {"sleep_s": 60}, pipeline="noop", retention_s=0)
    _until("the long job to start", lambda: dep.client.job(running["id"])["status"] == "running")
    marker = f"outputs/{running['id']}/attempt-1/partial.bin"
    objects.put(marker, b"p")
    done = dep.submit_file(video, pipeline="noop")  # FQ_RETENTION_S=1
    kept = dep.submit_file(video, pipeline="noop", retention_s=3600)
    assert dep.wait_done(kept["id"])["status"] == "succeeded"
    record = _until("the files to expire", lambda: (r := dep.client.job(done["id"]))["outputs_expired_at"] and r)
    assert record["status"] == "succeeded" and record["outputs"] == {} and record["retention_s"] == 1
    assert objects.list(f"outputs/{done['id']}/") == []
    assert objects.size(done["input"]["key"]) is None
    # the running job: nothing of it went, though its retention_s is 0
    live = dep.client.job(running["id"])
    assert live["status"] == "running" and live["outputs_expired_at"] is None
    assert objects.size(marker) == 1 and objects.size(running["input"]["key"]) == 1000
    # the job kept for an hour: an operator's purge --before, listed first
    kept_keys = objects.list(f"outputs/{kept['id']}/")
    assert kept_keys and dep.client.job(kept["id"])["outputs_expired_at"] is None
    now = dt.datetime.now(dt.UTC).isoformat()
    dry = dep.cli("purge", "--dry-run", "--before", now)
    lines = [json.loads(line) for line in dry.stdout.splitlines()]
    listed = {line["job"]: line for line in lines if line["purge"] == "files"}
    assert set(listed) == {kept["id"]}
    assert set(listed[kept["id"]]["keys"]) == {*kept_keys, kept["input"]["key"]}
    assert listed[kept["id"]]["bytes"] > 1000 and "would delete: the files of 1 jobs" in dry.stderr
    assert objects.list(f"outputs/{kept['id']}/") == kept_keys
    purged = dep.cli("purge", "--before", now)
    assert "deleted: the files of 1 jobs" in purged.stderr, purged.stderr
    assert objects.list(f"outputs/{kept['id']}/") == [] and objects.size(kept["input"]["key"]) is None
    assert dep.client.job(kept["id"])["outputs_expired_at"] is not None
    assert dep.client.job(running["id"])["status"] == "running" and objects.size(marker) == 1
    # the record goes RECORD_RETENTION_S after the job ended
    _until("the record purge", lambda: _gone(dep, done["id"]), timeout_s=RECORD_RETENTION_S + 20)


def _gone(dep: Deployment, job_id: str) -> bool:
    try:
        dep.client.job(job_id)
    except JobNotFound:
        return True
    return False
