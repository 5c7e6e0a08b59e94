"""The contract of a job store and a queue in one SQL database (framequeue.brokers.in_tx.InTxQueue with
framequeue.jobstore.ports.TxJobStore), run against each backend that has both: SQLite (one file) and
PostgreSQL (the store's schema and the queue's tables in one database). A row and its message commit
together or not at all, and so do a job's terminal state and the ack of its message."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from framequeue.brokers import open_broker
from framequeue.brokers.base import Broker
from framequeue.brokers.in_tx import InTxQueue
from framequeue.config import Settings
from framequeue.errors import LeaseLost
from framequeue.jobs import Job, JobStatus, Priority
from framequeue.jobstore import JobStore, open_jobstore
from framequeue.jobstore.ports import TxJobStore
from framequeue.models.repository import ModelRepository
from framequeue.service import JobService, PublishedMarks, SharedDatabase, SubmitRequest
from framequeue.storage import open_storage
from framequeue.tenants.auth import Principal
from tests.contract.backends import DEPLOYMENTS, _redis, cleanup
from tests.contract.conftest import T0, new_job, render

SAME_DB = ["sqlite", "postgres"]


@pytest.fixture(params=SAME_DB)
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    store_url, queue_url = (make(tmp_path) for make in DEPLOYMENTS[request.param])
    yield store_url, queue_url
    cleanup(store_url)
    cleanup(queue_url)


@pytest.fixture
def pair(urls: tuple[str, str]) -> Iterator[tuple[JobStore, Broker, SharedDatabase]]:
    store, broker = open_jobstore(urls[0], render), open_broker(urls[1])
    shared = SharedDatabase.of(store, broker)
    assert shared is not None, "a store and a queue in one database pair up"
    yield store, broker, shared
    broker.close()
    store.close()


def ready(broker: Broker) -> int:
    return broker.stats().ready


def test_both_sides_name_the_same_database(pair: tuple[JobStore, Broker, SharedDatabase]) -> None:
    store, broker, _ = pair
    assert isinstance(store, TxJobStore) and isinstance(broker, InTxQueue)
    assert store.database == broker.database


def test_a_store_and_a_queue_in_different_databases_do_not_pair(tmp_path: Path) -> None:
    store = open_jobstore(f"sqlite:///{tmp_path / 'a.db'}", render)
    other = open_broker(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        assert SharedDatabase.of(store, other) is None
    finally:
        other.close()
        store.close()


def test_a_queue_without_the_capability_does_not_pair(tmp_path: Path) -> None:
    store_url, redis_url = DEPLOYMENTS["postgres"][0](tmp_path), _redis(tmp_path)
    store, broker = open_jobstore(store_url, render), open_broker(redis_url)
    try:
        assert not isinstance(broker, InTxQueue)
        assert SharedDatabase.of(store, broker) is None
    finally:
        broker.close()
        store.close()
        cleanup(store_url)
        cleanup(redis_url)


def test_rows_and_messages_commit_together(pair: tuple[JobStore, Broker, SharedDatabase]) -> None:
    store, broker, shared = pair
    out = shared.create_published([(new_job("a"), None), (new_job("b", priority=Priority.HIGH), None)])
    assert [o[0].id for o in out if not isinstance(o, Exception)] == ["a", "b"]
    assert ready(broker) == 2
    first = broker.receive(visibility_s=30, wait_s=1)
    assert first is not None and first.job_id == "b"  # its lane went with it
    # born published: the reaper finds nothing to publish again
    assert store.unpublished(T0 + 3600, 10) == []


def test_a_replayed_key_publishes_nothing(pair: tuple[JobStore, Broker, SharedDatabase]) -> None:
    _, broker, shared = pair
    shared.create_published([(new_job("a", idempotency_key="k"), "h")])
    again = shared.create_published([(new_job("b", idempotency_key="k"), "h")])[0]
    assert not isinstance(again, Exception) and again == (again[0], False) and again[0].id == "a"
    assert ready(broker) == 1


def test_a_failed_transaction_leaves_neither_row_nor_message(
    pair: tuple[JobStore, Broker, SharedDatabase],
) -> None:
    store, broker, shared = pair
    assert isinstance(store, TxJobStore)

    def enqueue_then_fail(conn: Any, created: list[Job]) -> None:
        shared.queue.publish_in(conn, [job.id for job in created])
        raise RuntimeError("the process died before its commit")

    with pytest.raises(RuntimeError):
        store.create_many([(new_job("gone"), None)], enqueue=enqueue_then_fail)
    assert store.list_jobs() == []
    assert ready(broker) == 0


def test_the_ack_commits_with_the_terminal_state(pair: tuple[JobStore, Broker, SharedDatabase]) -> None:
    store, broker, shared = pair
    shared.create_published([(new_job("a"), None)])
    message = broker.receive(visibility_s=30, wait_s=1)
    assert message is not None
    job = store.claim("a", "w1", 30, T0 + 1)
    assert job is not None
    shared.store.finish("a", job.lease_token, JobStatus.SUCCEEDED, T0 + 2, then=shared.acking(message))
    assert store.get("a").status is JobStatus.SUCCEEDED
    stats = broker.stats()
    assert (stats.ready, stats.in_flight, stats.delayed) == (0, 0, 0)


def test_a_stale_token_keeps_the_message(pair: tuple[JobStore, Broker, SharedDatabase]) -> None:
    store, broker, shared = pair
    shared.create_published([(new_job("a"), None)])
    message = broker.receive(visibility_s=30, wait_s=1)
    assert message is not None
    job = store.claim("a", "w1", 30, T0 + 1)
    assert job is not None
    with pytest.raises(LeaseLost):
        shared.store.finish("a", job.lease_token + 1, JobStatus.SUCCEEDED, T0 + 2, then=shared.acking(message))
    assert store.get("a").status is JobStatus.RUNNING
    assert broker.stats().in_flight == 1  # not acked: it comes back if this worker never ends the job


def _service(store: JobStore, broker: Broker, tmp_path: Path) -> JobService:
    settings = Settings(home=tmp_path).resolved()
    objects = open_storage((tmp_path / "objects").as_uri())
    objects.put("in/x.bin", b"x")
    return JobService(settings, store, broker, objects, ModelRepository(tmp_path / "models"), webhook_secret="s")


def test_a_submit_is_one_commit_with_its_message(
    pair: tuple[JobStore, Broker, SharedDatabase], tmp_path: Path
) -> None:
    store, broker, _ = pair
    service = _service(store, broker, tmp_path)
    assert service.shared is not None
    caller = Principal("t", "admin", dev=True)
    one = service.submit(SubmitRequest(pipeline="noop", input_key="in/x.bin"), caller)
    many = service.submit_many([SubmitRequest(pipeline="noop", input_key="in/x.bin")] * 3, caller)
    assert one.created and all(not isinstance(m, Exception) and m.created for m in many)
    assert ready(broker) == 4
    assert store.unpublished(1e12, 10) == []


def test_published_marks_coalesce_while_a_write_is_under_way(tmp_path: Path) -> None:
    store = open_jobstore(f"sqlite:///{tmp_path / 'fq.db'}", render)
    try:
        ids = [f"j{i}" for i in range(40)]
        store.create_many([(new_job(job_id), None) for job_id in ids])
        writes: list[int] = []
        writing, release = threading.Event(), threading.Event()

        class Slow:
            """The store, with its first mark_published held until the other submits came."""

            def mark_published(self, job_id: str, now_s: float) -> None:
                writes.append(1)
                writing.set()
                release.wait(10)
                store.mark_published(job_id, now_s)

            def mark_published_many(self, job_ids: list[str], now_s: float) -> None:
                writes.append(len(job_ids))
                store.mark_published_many(job_ids, now_s)

        marks = PublishedMarks(Slow(), lambda: T0 + 1)  # type: ignore[arg-type]
        leader = threading.Thread(target=marks.add, args=(ids[:1],))
        leader.start()
        assert writing.wait(10)
        followers = [threading.Thread(target=marks.add, args=([job_id],)) for job_id in ids[1:]]
        for t in followers:
            t.start()
        deadline = time.monotonic() + 10
        while len(marks._waiting) < len(followers) and time.monotonic() < deadline:  # all came, all wait
            time.sleep(0.01)
        assert all(t.is_alive() for t in followers)  # a submit returns only once its mark is written
        assert store.unpublished(T0 + 3600, 100) == ids  # none written yet
        release.set()
        for t in [leader, *followers]:
            t.join(10)
        assert writes == [1, 39]
        assert store.unpublished(T0 + 3600, 100) == []
    finally:
        store.close()
