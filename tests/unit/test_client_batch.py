"""The client's batch submit as described calls: 1,000 jobs per POST /v1/jobs:batch, each job's own key, a
call retried only when all its jobs have keys, and the answers numbered over all the jobs."""

from __future__ import annotations

import pytest

from framequeue.client import calls
from framequeue.client.records import BatchItem
from framequeue.errors import InvalidParams


def test_long_lists_go_in_calls_of_a_thousand_with_each_job_s_key() -> None:
    bodies = [{"pipeline": "noop", "input": {"key": f"k{i}"}} for i in range(2500)]
    keys = [f"key-{i}" if i < 2000 else None for i in range(2500)]
    sent = calls.submit_many(bodies, keys)
    assert [len(c.json["jobs"]) for c in sent] == [1000, 1000, 500]
    assert {(c.method, c.path, c.unwrap) for c in sent} == {("POST", "/v1/jobs:batch", "results")}
    assert sent[1].json["jobs"][0] == {**bodies[1000], "idempotency_key": "key-1000"}
    assert "idempotency_key" not in sent[2].json["jobs"][0]
    assert [c.idempotent for c in sent] == [True, True, False]
    assert "idempotency_key" not in bodies[0]  # the caller's bodies are left as they were


def test_without_keys_nothing_is_retried_and_a_key_per_job_is_required() -> None:
    assert [c.idempotent for c in calls.submit_many([{"pipeline": "noop"}], None)] == [False]
    with pytest.raises(InvalidParams):
        calls.submit_many([{"pipeline": "noop"}] * 2, ["only-one"])


def test_answers_are_numbered_over_all_the_jobs() -> None:
    first: list[BatchItem] = [{"index": 0, "status": 202}, {"index": 1, "status": 422}]
    second: list[BatchItem] = [{"index": 0, "status": 200}]
    assert [(r["index"], r["status"]) for r in calls.renumber([first, second])] == [(0, 202), (1, 422), (2, 200)]
