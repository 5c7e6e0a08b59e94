"""Prefetch 1 in the worker loop (framequeue.worker.prefetch) and the scratch copy a pipeline that reads its
input in place skips, on a real embedded deployment (one SQLite file, a local object store, the warm child)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from framequeue.config import Settings
from framequeue.jobs import JobStatus
from framequeue.pipelines.base import reads_input_in_place
from framequeue.pipelines.registry import get_pipeline
from framequeue.runtime import Runtime, open_runtime
from framequeue.service import SubmitRequest
from framequeue.tenants.auth import Principal
from framequeue.worker.loop import Worker
from framequeue.worker.prefetch import Prefetch

CALLER = Principal("t", "admin", dev=True)


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = open_runtime(Settings(home=tmp_path, reap_interval_s=3600).resolved())
    runtime.objects.put("in/x.bin", b"0123456789")
    yield runtime
    runtime.close()


def submit(rt: Runtime, n: int) -> list[str]:
    return [rt.service.submit(SubmitRequest(pipeline="noop", input_key="in/x.bin"), CALLER).record["id"]
            for _ in range(n)]


def statuses(rt: Runtime, ids: list[str]) -> list[JobStatus]:
    return [rt.store.get(job_id).status for job_id in ids]


def test_a_message_received_ahead_is_the_next_one(rt: Runtime) -> None:
    [job_id] = submit(rt, 1)
    prefetch = Prefetch(rt.broker, visibility_s=30, wait_s=1)
    try:
        prefetch.start()
        prefetch.start()  # one receive at a time
        message = prefetch.next()
        assert message is not None and message.job_id == job_id
        assert prefetch.next() is None  # nothing more came within the wait
    finally:
        prefetch.close()


def test_a_message_received_ahead_and_not_handled_goes_back(rt: Runtime) -> None:
    [job_id] = submit(rt, 1)
    prefetch = Prefetch(rt.broker, visibility_s=30, wait_s=1)
    prefetch.start()
    prefetch.close()
    stats = rt.broker.stats()
    assert (stats.ready, stats.in_flight) == (1, 0)
    again = rt.broker.receive(visibility_s=30, wait_s=1)
    assert again is not None and again.job_id == job_id and again.deliveries == 2


def test_max_jobs_counts_the_job_in_hand_and_holds_no_message_past_it(rt: Runtime) -> None:
    ids = submit(rt, 5)
    Worker(rt, max_jobs=2).run()
    assert statuses(rt, ids) == [JobStatus.SUCCEEDED] * 2 + [JobStatus.QUEUED] * 3
    stats = rt.broker.stats()
    assert (stats.ready, stats.in_flight) == (3, 0)
    # none of the three was received ahead (and nacked) by the worker that stopped at its second job
    rest = [rt.broker.receive(visibility_s=30, wait_s=1) for _ in range(3)]
    assert [m.deliveries for m in rest if m is not None] == [1, 1, 1]


def test_drain_hands_the_message_received_ahead_back(rt: Runtime) -> None:
    ids = submit(rt, 3)

    class DrainedDuringCommit(Worker):
        def _prefetch(self, prefetch: Prefetch) -> None:
            prefetch.start()
            self.drain()  # as SIGTERM would, while the first job commits with a message received ahead

    worker = DrainedDuringCommit(rt)
    worker.run()
    assert statuses(rt, ids) == [JobStatus.SUCCEEDED, JobStatus.QUEUED, JobStatus.QUEUED]
    stats = rt.broker.stats()
    assert (stats.ready, stats.in_flight) == (2, 0)


def test_every_job_runs_once_with_prefetch(rt: Runtime) -> None:
    ids = submit(rt, 6)
    worker = Worker(rt, max_jobs=6)
    worker.run()
    assert statuses(rt, ids) == [JobStatus.SUCCEEDED] * 6
    assert all(rt.store.get(job_id).attempts == 1 for job_id in ids)
    stats = rt.broker.stats()
    assert (stats.ready, stats.in_flight) == (0, 0)


def test_noop_reads_its_input_in_place_and_detect_does_not_say_so(rt: Runtime) -> None:
    assert reads_input_in_place(get_pipeline("noop"))
    assert not reads_input_in_place(get_pipeline("detect"))
    [job_id] = submit(rt, 1)
    worker = Worker(rt, max_jobs=1)
    worker.run()
    job = rt.store.get(job_id)
    assert job.status is JobStatus.SUCCEEDED
    assert b'"input_size_bytes": 10' in rt.objects.get(job.outputs["result"])
    # no copy to scratch was made (the fetch stage times only copies)
    assert worker.metrics.stage_s.labels("fetch")._value.get() == 0.0


def test_a_missing_input_read_in_place_fails_the_job(rt: Runtime) -> None:
    [job_id] = submit(rt, 1)
    rt.objects.delete("in/x.bin")
    Worker(rt, max_jobs=1).run()
    job = rt.store.get(job_id)
    assert job.status is JobStatus.FAILED and job.error is not None and job.error.code == "input_not_found"


def test_a_pipeline_this_worker_cannot_load_fails_its_job_instead_of_stalling_the_loop(rt: Runtime) -> None:
    [job_id] = submit(rt, 1)
    with sqlite3.connect(rt.settings.home / "fq.db") as conn:  # a job queued before its pipeline was removed
        conn.execute("UPDATE jobs SET pipeline = 'gone' WHERE id = ?", (job_id,))
    Worker(rt, max_jobs=1).run()
    job = rt.store.get(job_id)
    assert job.status is JobStatus.FAILED and job.error is not None and job.error.code == "unknown_pipeline"
