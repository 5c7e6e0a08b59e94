"""What the SQLite job store promises beyond the shared contracts: a file left by an older release is
migrated in place when a store opens, and opening it again applies nothing twice."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from framequeue.jobstore.sqlite import SQLiteJobStore
from framequeue.jobstore.sqlite.schema import MIGRATIONS, SCHEMA
from tests.contract.conftest import new_job, render
from tests.contract.test_endpoint_store import _endpoint
from tests.contract.test_model_endpoint_store import _ep


def test_a_sqlite_store_from_before_endpoints_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)  # the tables as the first release made them, user_version 0
    conn.close()
    store = SQLiteJobStore(f"sqlite:///{path}", render)
    store.create(new_job("j1", endpoint="e1"))
    assert store.get("j1").endpoint == "e1"
    store.create_endpoint(_endpoint("e1"))
    store.close()
    store = SQLiteJobStore(f"sqlite:///{path}", render)  # opening again applies nothing twice
    assert store.get_endpoint("e1", "default").name == "e1"
    store.close()


def test_a_sqlite_store_from_before_the_registry_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    for statement in filter(str.strip, MIGRATIONS[0].split(";")):  # as the async-endpoints release left it
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = SQLiteJobStore(f"sqlite:///{path}", render)
    store.register_model_endpoint(_ep("a"))
    store.close()
    store = SQLiteJobStore(f"sqlite:///{path}", render)  # opening again applies nothing twice
    assert [e.id for e in store.list_model_endpoints()] == ["a"]
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_a_sqlite_store_from_before_tenants_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    for step in MIGRATIONS[:2]:  # as the release before tenants left it
        conn.executescript(step)
    conn.execute("PRAGMA user_version = 2")
    conn.execute(
        """INSERT INTO jobs (id, seq, pipeline, pipeline_version, input_key, params, status, created_at_s,
           updated_at_s, expires_at_s, timeout_s, max_attempts)
           VALUES ('old', 1, 'noop', '1', 'uploads/x/in.mp4', '{}', 'queued', 1, 1, 99, 9, 3)"""
    )
    conn.commit()
    conn.close()
    store = SQLiteJobStore(f"sqlite:///{path}", render)
    assert store.get("old").tenant == "default"
    assert not store.has_api_keys()
    store.close()


def test_a_sqlite_queue_from_before_lanes_keeps_its_messages_as_normal(tmp_path: Path) -> None:
    from framequeue.brokers.sqlite import SQLiteBroker
    from framequeue.jobs import Priority

    path = tmp_path / "queue.db"
    conn = sqlite3.connect(path)
    conn.executescript("""CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL,
        visible_at_s REAL NOT NULL, receipt TEXT, deliveries INTEGER NOT NULL DEFAULT 0,
        enqueued_at_s REAL NOT NULL);
        INSERT INTO queue (job_id, visible_at_s, enqueued_at_s) VALUES ('old', 0, 0);""")
    conn.commit()
    conn.close()
    broker = SQLiteBroker(f"sqlite:///{path}")
    broker.publish("low", Priority.LOW)
    broker.publish("high", Priority.HIGH)
    got: list[str] = []
    for _ in range(3):
        msg = broker.receive(visibility_s=60, wait_s=1)
        assert msg is not None
        got.append(msg.job_id)
        broker.ack(msg)
    assert got == ["high", "old", "low"]
    broker.close()
    SQLiteBroker(f"sqlite:///{path}").close()  # opening again adds nothing twice
