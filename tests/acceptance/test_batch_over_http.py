"""Batch submit (POST /v1/jobs:batch) against a real `framequeue up` (API and two workers): 200 jobs in one
call with invalid items and repeated idempotency keys among them; each valid job runs exactly once, each
invalid one is answered in its place, and whole-request errors answer as any route's."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from framequeue.errors import PayloadTooLarge
from tests.acceptance.deployment import Deployment

pytestmark = pytest.mark.slow

JOBS = 200


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("batch"), lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2)
    d.start("up", "up", "--workers", "2")
    d.wait_ready()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def input_key(dep: Deployment, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("inputs") / "in.bin"
    path.write_bytes(b"x" * 16)
    return dep.client.upload(path)["key"]


def all_jobs(dep: Deployment) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        page = dep.client.jobs(limit=500, after=after)
        out.extend(page["jobs"])
        if page["next_after"] is None:
            return out
        after = page["next_after"]


def test_two_hundred_jobs_in_one_call_each_valid_one_runs_once(dep: Deployment, input_key: str) -> None:
    def job(n: int) -> dict[str, Any]:
        return {"pipeline": "noop", "input": {"key": input_key}, "attributes": {"n": str(n)}}

    jobs: list[Any] = [job(n) for n in range(JOBS)]
    invalid = {
        7: ({"pipeline": "no-such-pipeline", "input": {"key": input_key}}, 422, "unknown_pipeline"),
        19: ({**job(19), "colour": "blue"}, 400, "invalid_request"),
        42: ({"pipeline": "noop"}, 400, "invalid_request"),
        99: ({"pipeline": "noop", "input": {"key": "uploads/missing.bin"}}, 422, "input_not_found"),
        150: ("not an object", 400, "invalid_request"),
        160: ({**job(160), "ttl_s": -1}, 422, "invalid_params"),
    }
    for index, (body, _, _) in invalid.items():
        jobs[index] = body
    keys: list[str | None] = [None] * JOBS
    keys[10] = keys[11] = "same-key"  # the same body twice under one key: one job
    jobs[11] = job(10)
    keys[20] = keys[21] = "clash-key"  # another body under a used key: refused
    results = dep.client.submit_many(jobs, keys)

    assert [r["index"] for r in results] == list(range(JOBS))
    for index, (_, status, code) in invalid.items():
        assert results[index]["status"] == status and results[index]["error"]["code"] == code, results[index]
    assert results[10]["status"] == 202 and results[11]["status"] == 200
    assert results[11]["job"]["id"] == results[10]["job"]["id"]
    assert results[21]["status"] == 422 and results[21]["error"]["code"] == "idempotency_key_reused"
    refused = {*invalid, 21}
    queued = [r for r in results if r["index"] not in refused]
    assert all("job" in r and "error" not in r for r in queued)
    ids = {r["job"]["id"] for r in queued}
    assert len(ids) == JOBS - len(refused) - 1  # 11 is 10's job

    # the replay of a whole batch answers the same jobs and queues nothing new
    again = dep.client.submit_many([job(10), job(20)], ["same-key", "clash-key"])
    assert [r["status"] for r in again] == [200, 200]
    assert [r["job"]["id"] for r in again] == [results[10]["job"]["id"], results[20]["job"]["id"]]

    for job_id in ids:
        record = dep.wait_done(job_id, timeout_s=240)
        assert record["status"] == "succeeded" and record["attempts"] == 1, record
    mine = [j for j in all_jobs(dep) if j["id"] in ids]
    assert len(mine) == len(ids)
    assert sorted(int(j["attributes"]["n"]) for j in mine) == sorted(
        int(r["job"]["attributes"]["n"]) for r in queued if r["index"] != 11
    )


def test_whole_request_errors_answer_as_problems(dep: Deployment, input_key: str) -> None:
    url = f"{dep.base_url}/v1/jobs:batch"
    job = {"pipeline": "noop", "input": {"key": input_key}}
    before = len(all_jobs(dep))
    too_many = httpx.post(url, json={"jobs": [job] * 1001}, timeout=30)
    assert too_many.status_code == 413 and too_many.json()["code"] == PayloadTooLarge.code
    assert too_many.headers["content-type"].startswith("application/problem+json")
    for body in (b"{not json", b'{"jobs": {}}', b'[{"pipeline": "noop"}]', b'{"jobs": [], "x": 1}'):
        bad = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=30)
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_request", body
    wrong_type = httpx.post(url, content=b"jobs", headers={"content-type": "text/plain"}, timeout=30)
    assert wrong_type.status_code == 415
    assert len(all_jobs(dep)) == before
    empty = httpx.post(url, json={"jobs": []}, timeout=30)
    assert empty.status_code == 200 and empty.json() == {"results": []}


def test_the_cli_submits_several_files_in_one_batch(dep: Deployment, tmp_path: Path) -> None:
    paths = [tmp_path / f"f{i}.bin" for i in range(4)]
    for p in paths:
        p.write_bytes(b"y" * 8)
    done = dep.cli("submit", *map(str, paths), "--pipeline", "noop", "-q", "--server", dep.base_url)
    ids = done.stdout.split()
    assert len(ids) == 4 and len(set(ids)) == 4
    assert [dep.client.job(i)["input"]["key"].endswith(p.name) for i, p in zip(ids, paths, strict=True)] \
        == [True] * 4
    log = dep.log("up")  # this module never submits one job at a time
    assert re.search(r"POST /v1/jobs(:|%3A)batch ", log) and "POST /v1/jobs HTTP" not in log


def test_the_async_client_submits_a_batch(dep: Deployment, input_key: str) -> None:
    from framequeue.client import AsyncClient, BatchItem

    async def go() -> list[BatchItem]:
        async with AsyncClient(dep.base_url) as c:
            return await c.submit_many([{"pipeline": "noop", "input": {"key": input_key}}] * 3 + [{}],
                                       ["async-a", "async-b", None, None])

    results = asyncio.run(go())
    assert [r["status"] for r in results] == [202, 202, 202, 400]
    assert all(dep.wait_done(r["job"]["id"], timeout_s=60)["status"] == "succeeded" for r in results[:3])


def test_each_job_counts_against_the_rate_limit_and_the_quota(tmp_path: Path) -> None:
    # no worker: the jobs stay queued, so the quota holds; the bucket refills too slowly to matter
    limited = Deployment(tmp_path, rate_limit_per_s=0.001, rate_burst=5, max_queued_per_tenant=3)
    limited.start("api", "api")
    try:
        limited.wait_ready()
        payload = tmp_path / "in.bin"
        payload.write_bytes(b"z")
        key = limited.client.upload(payload)["key"]  # one token of five
        jobs = [{"pipeline": "noop", "input": {"key": key}} for _ in range(6)]
        results = limited.client.submit_many(jobs)
        # the request's token and three more pay for jobs 0-3; of those, the quota of 3 takes jobs 0-2
        assert [r["status"] for r in results] == [202, 202, 202, 429, 429, 429]
        assert [r["error"]["code"] for r in results[3:]] == ["quota_exceeded", "rate_limited", "rate_limited"]
        assert len(limited.client.jobs()["jobs"]) == 3
    finally:
        limited.stop()
