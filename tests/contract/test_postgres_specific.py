"""What the PostgreSQL backends promise beyond the shared contracts: separate store instances (as separate
processes would) never double-claim, connections killed by the server are replaced, migrations run once
when processes start together, and an idle consumer wakes on NOTIFY instead of polling."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg.rows import dict_row

from framequeue.brokers.postgres import WAKE_S, PostgresBroker
from framequeue.errors import InvalidParams, ServiceUnavailable
from framequeue.jobs import JobStatus
from framequeue.jobstore.postgres import PostgresJobStore
from framequeue.jobstore.postgres.schema import MIGRATIONS, migrate
from tests.contract.backends import PG_DSN, require_service
from tests.contract.conftest import LEASE_S, T0, new_job, render


@pytest.fixture
def admin() -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    require_service("postgres")
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        yield conn


@pytest.fixture
def pg_url(admin: psycopg.Connection[tuple[object, ...]]) -> Iterator[str]:
    """A fresh schema, tagged with its own application_name so a test can find (and kill) its connections."""
    schema = f"fq_{uuid.uuid4().hex[:12]}"
    yield f"{PG_DSN}{'&' if '?' in PG_DSN else '?'}schema={schema}&application_name={schema}"
    admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def app_name(url: str) -> str:
    return url.rsplit("application_name=", 1)[1]


def terminate(admin: psycopg.Connection[tuple[object, ...]], url: str) -> int:
    """Kill the backends of this test's connections, as a server restart or a failover would."""
    row = admin.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s", (app_name(url),)
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def in_threads(n: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors


def test_separate_stores_racing_for_50_jobs_never_double_claim(pg_url: str) -> None:
    stores = [PostgresJobStore(pg_url, render) for _ in range(4)]
    try:
        ids = [f"job-{i}" for i in range(50)]
        for job_id in ids:
            stores[0].create(new_job(job_id))
        wins: list[tuple[str, int]] = []
        barrier = threading.Barrier(len(stores))

        def claimer(i: int) -> None:
            order = ids[:]
            random.Random(i).shuffle(order)
            barrier.wait()
            for job_id in order:
                job = stores[i].claim(job_id, f"w{i}", LEASE_S, T0)
                if job is not None:
                    wins.append((job_id, i))

        in_threads(len(stores), claimer)
        assert sorted(job_id for job_id, _ in wins) == sorted(ids)  # each exactly once
        for job in stores[0].list_jobs(limit=100):
            assert (job.status, job.attempts, job.lease_token) == (JobStatus.RUNNING, 1, 1)
            assert job.lease_owner == f"w{dict(wins)[job.id]}"
    finally:
        for s in stores:
            s.close()


def test_separate_stores_submitting_one_idempotency_key_make_one_job(pg_url: str) -> None:
    stores = [PostgresJobStore(pg_url, render) for _ in range(6)]
    try:
        ids: list[str] = []
        barrier = threading.Barrier(len(stores))

        def submit(i: int) -> None:
            barrier.wait()
            job, _ = stores[i].create(new_job(f"c{i}", idempotency_key="same"), "h")
            ids.append(job.id)

        in_threads(len(stores), submit)
        assert len(set(ids)) == 1 and len(stores[0].list_jobs()) == 1
    finally:
        for s in stores:
            s.close()


def test_the_store_keeps_working_after_the_server_kills_its_connections(
    pg_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    store = PostgresJobStore(pg_url, render)
    try:
        store.create(new_job(webhook_url="https://example.com/h", webhook_secret="whsec_x"))
        job = store.claim("job-1", "w", LEASE_S, T0)
        assert job is not None
        assert terminate(admin, pg_url) >= 1
        # the very next calls work: a dead pooled connection is replaced before anything was committed
        assert store.get("job-1").status is JobStatus.RUNNING
        store.ping()
        assert store.renew("job-1", job.lease_token, LEASE_S, T0 + 10) is False
        assert terminate(admin, pg_url) >= 1
        done = store.finish("job-1", job.lease_token, JobStatus.SUCCEEDED, T0 + 20, outputs={"video": "v"})
        assert done.status is JobStatus.SUCCEEDED
        assert [e.id for e in store.due_events(T0 + 30, 10)] == ["evt_job-1_succeeded"]
    finally:
        store.close()


def test_the_queue_keeps_working_after_the_server_kills_its_connections(
    pg_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    consumer, producer = PostgresBroker(f"{pg_url}&queue=q"), PostgresBroker(f"{pg_url}&queue=q")
    try:
        producer.publish("a")
        first = consumer.receive(visibility_s=30, wait_s=2)
        assert first is not None and first.job_id == "a"
        assert terminate(admin, pg_url) >= 3  # both pools and the consumer's LISTEN connection
        consumer.ack(first)
        # the LISTEN connection is replaced too: a publish still wakes an idle consumer at once
        timer = threading.Timer(0.3, producer.publish, args=("b",))
        timer.start()
        started = time.monotonic()
        second = consumer.receive(visibility_s=30, wait_s=5)
        timer.join()
        assert second is not None and second.job_id == "b"
        assert time.monotonic() - started < 0.3 + WAKE_S
        assert (consumer.stats().ready, consumer.stats().in_flight) == (0, 1)
    finally:
        consumer.close()
        producer.close()


def test_an_idle_consumer_wakes_on_notify_and_when_a_delay_ends(pg_url: str) -> None:
    consumer, producer = PostgresBroker(f"{pg_url}&queue=q"), PostgresBroker(f"{pg_url}&queue=q")
    try:
        timer = threading.Timer(0.2, producer.publish, args=("late",))
        timer.start()
        started = time.monotonic()
        msg = consumer.receive(visibility_s=30, wait_s=5)
        timer.join()
        assert msg is not None
        assert time.monotonic() - started < 0.2 + WAKE_S / 2  # the NOTIFY, not the fallback look
        consumer.nack(msg, delay_s=0.4)
        started = time.monotonic()
        again = consumer.receive(visibility_s=30, wait_s=5)
        assert again is not None and again.deliveries == 2
        assert 0.35 < time.monotonic() - started < 0.4 + WAKE_S / 2  # woke when the delay ended
    finally:
        consumer.close()
        producer.close()


def test_migrations_run_once_when_processes_start_together(
    pg_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    barrier = threading.Barrier(6)
    opened: list[PostgresJobStore | PostgresBroker] = []

    def open_one(i: int) -> None:
        barrier.wait()
        opened.append(PostgresJobStore(pg_url, render) if i % 2 else PostgresBroker(f"{pg_url}&queue=q"))

    try:
        in_threads(6, open_one)
    finally:
        for backend in opened:
            backend.close()
    schema = pg_url.split("schema=", 1)[1].split("&", 1)[0]
    rows = admin.execute(f'SELECT version FROM "{schema}".schema_migrations ORDER BY version').fetchall()
    assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]
    with psycopg.connect(PG_DSN, row_factory=dict_row) as conn:
        assert migrate(conn, schema) == []


def test_a_long_queue_name_fits_postgresql_identifiers(pg_url: str) -> None:
    broker = PostgresBroker(f"{pg_url}&queue={'q' * 64}")
    other = PostgresBroker(f"{pg_url}&queue={'q' * 63}")
    try:
        broker.publish("a")
        assert other.receive(visibility_s=30, wait_s=0.1) is None
        msg = broker.receive(visibility_s=30, wait_s=1)
        assert msg is not None and msg.job_id == "a"
    finally:
        broker.close()
        other.close()


def test_an_unreachable_server_is_service_unavailable() -> None:
    with pytest.raises(ServiceUnavailable):
        PostgresJobStore("postgresql://postgres@127.0.0.1:1/test?schema=fq_none", render)
    with pytest.raises(ServiceUnavailable):
        PostgresBroker("postgresql://postgres@127.0.0.1:1/test?queue=q")


def test_a_schema_name_must_be_a_plain_identifier() -> None:
    with pytest.raises(InvalidParams):
        PostgresJobStore('postgresql://postgres@127.0.0.1:5432/test?schema=x";drop', render)
