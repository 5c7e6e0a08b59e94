"""Several competing workers in separate processes drain 200 jobs: each job succeeds exactly once."""

from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.acceptance.deployment import Deployment

pytestmark = pytest.mark.slow

JOBS = 200
WORKERS = 4


def test_competing_workers_drain_200_jobs_each_exactly_once(split: Deployment, tmp_path: Path) -> None:
    for i in range(WORKERS):
        split.start(f"w{i}", "worker")
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"x" * 1024)
    key = split.client.upload(payload)["key"]

    def submit(i: int) -> str:
        record = split.client.submit({"pipeline": "noop", "input": {"key": key}, "attributes": {"n": str(i)}})
        return str(record["id"])

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(submit, range(JOBS)))
    assert len(set(ids)) == JOBS

    deadline = time.monotonic() + 240
    while True:
        done = split.client.jobs(status="succeeded", limit=500)["jobs"]
        if len(done) == JOBS or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {j["id"] for j in done} == set(ids)
    assert all(j["attempts"] == 1 for j in done)
    # each job was committed by exactly one worker: count the commits in every worker's log
    commits: Counter[str] = Counter()
    for i in range(WORKERS):
        commits.update(re.findall(r"job ([0-9a-f]{32}): succeeded", split.log(f"w{i}")))
    assert set(commits) == set(ids) and set(commits.values()) == {1}
    busy = sum(1 for i in range(WORKERS) if ": succeeded" in split.log(f"w{i}"))
    assert busy >= 2, "the jobs should be shared between competing workers"
