"""The batch submit's contract (JobStateStore.create_many, mark_published_many), run against every job store
backend: one transaction for the whole batch, idempotency per item."""

from __future__ import annotations

import threading

import pytest

from framequeue.errors import IdempotencyConflict
from framequeue.jobs import Job
from framequeue.jobstore import JobStore
from tests.contract.conftest import T0, new_job


def created(outcome: tuple[Job, bool] | IdempotencyConflict) -> tuple[str, bool]:
    assert not isinstance(outcome, IdempotencyConflict), outcome
    return outcome[0].id, outcome[1]


def test_every_row_is_created_in_order(store: JobStore) -> None:
    out = store.create_many([(new_job(f"b{i}", params={"n": i}), None) for i in range(5)])
    assert [created(o) for o in out] == [(f"b{i}", True) for i in range(5)]
    assert [j.id for j in store.list_jobs()] == [f"b{i}" for i in reversed(range(5))]
    assert store.get("b3").params == {"n": 3}
    assert store.create_many([]) == []


def test_a_used_key_answers_its_job_or_a_conflict_in_its_place(store: JobStore) -> None:
    store.create(new_job("old", idempotency_key="k1"), "h1")
    out = store.create_many([
        (new_job("new-1"), None),
        (new_job("replay", idempotency_key="k1"), "h1"),
        (new_job("clash", idempotency_key="k1"), "other"),
        (new_job("new-2", idempotency_key="k2"), "h2"),
    ])
    assert created(out[0]) == ("new-1", True)
    assert created(out[1]) == ("old", False)
    assert isinstance(out[2], IdempotencyConflict) and out[2].code == "idempotency_key_reused"
    assert created(out[3]) == ("new-2", True)
    # the conflict did not undo the others
    assert sorted(j.id for j in store.list_jobs()) == ["new-1", "new-2", "old"]


def test_a_key_repeated_within_one_batch_makes_one_job(store: JobStore) -> None:
    out = store.create_many([
        (new_job("first", idempotency_key="dup"), "h"),
        (new_job("second", idempotency_key="dup"), "h"),
        (new_job("third", idempotency_key="dup"), "not-h"),
    ])
    assert created(out[0]) == ("first", True)
    assert created(out[1]) == ("first", False)
    assert isinstance(out[2], IdempotencyConflict)
    assert [j.id for j in store.list_jobs()] == ["first"]
    # and a later batch with that key and body gets the same job
    assert created(store.create_many([(new_job("fourth", idempotency_key="dup"), "h")])[0]) == ("first", False)


def test_a_failing_row_leaves_none_of_the_batch(store: JobStore) -> None:
    store.create(new_job("taken"))
    with pytest.raises(Exception) as caught:  # each backend's own duplicate-key error
        store.create_many([(new_job("x1", idempotency_key="kx"), "h"), (new_job("taken"), None),
                           (new_job("x2"), None)])
    assert not isinstance(caught.value, IdempotencyConflict)
    assert [j.id for j in store.list_jobs()] == ["taken"]
    # the key of the undone batch is free again
    assert created(store.create_many([(new_job("x3", idempotency_key="kx"), "h")])[0]) == ("x3", True)


def test_concurrent_batches_with_the_same_keys_make_one_job_per_key(store: JobStore) -> None:
    ids: list[list[str]] = []
    barrier = threading.Barrier(4)

    def submit(n: int) -> None:
        barrier.wait()
        out = store.create_many([(new_job(f"t{n}-{k}", idempotency_key=f"key-{k}"), "h") for k in range(10)])
        ids.append([created(o)[0] for o in out])

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 4 and all(batch == ids[0] for batch in ids)
    assert len(store.list_jobs(limit=100)) == 10


def test_mark_published_many_hides_the_batch_from_the_reaper(store: JobStore) -> None:
    store.create_many([(new_job(f"p{i}"), None) for i in range(4)])
    assert store.unpublished(T0 + 5, 10) == ["p0", "p1", "p2", "p3"]  # a batch that died before its publish
    store.mark_published_many(["p0", "p2"], T0 + 1)
    assert store.unpublished(T0 + 5, 10) == ["p1", "p3"]
    store.mark_published_many(["p1", "p3"], T0 + 1)
    assert store.unpublished(T0 + 5, 10) == []
    store.mark_published_many([], T0 + 1)
