"""The API dies between a batch's commit and its publish: no job of the batch is lost (the reaper publishes
the unpublished rows) and none runs twice."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from framequeue.errors import ServiceUnavailable
from tests.acceptance.deployment import Deployment

pytestmark = pytest.mark.slow

JOBS = 20


def test_api_dies_between_the_batch_rows_and_the_publish(split: Deployment, tmp_path: Path) -> None:
    split.signal("api", 15)
    split.procs["api"].wait(15)
    split.start("api2", "api", crash_at="after_insert")
    split.wait_ready()
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"x")
    key = split.client.upload(payload)["key"]
    jobs = [{"pipeline": "noop", "input": {"key": key}, "attributes": {"n": str(n)}} for n in range(JOBS)]
    with pytest.raises(ServiceUnavailable) as died:  # the client sees the connection drop, never an answer
        split.client.submit_many(jobs)
    assert isinstance(died.value.__cause__, httpx.TransportError)
    assert split.procs["api2"].wait(15) == 137
    split.start("api3", "api")
    split.wait_ready()
    queued = split.client.jobs(limit=100)["jobs"]
    assert len(queued) == JOBS and {j["status"] for j in queued} == {"queued"}
    split.start("w1", "worker")
    for job in queued:
        record = split.wait_done(job["id"], timeout_s=60)
        assert record["status"] == "succeeded" and record["attempts"] == 1, record
    assert sorted(int(j["attributes"]["n"]) for j in split.client.jobs(limit=100)["jobs"]) == list(range(JOBS))
