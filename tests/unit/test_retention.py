"""Retention: the pure rule (what is due, at the exact boundary), the sweeper on a real deployment's parts
(SQLite job store, file object store, in-memory queue) and the submit field's checks."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from framequeue.config import Settings
from framequeue.endpoints.async_endpoints import Endpoint
from framequeue.endpoints.invocations import Invocations, InvokeRequest
from framequeue.errors import InvalidParams, JobNotFound
from framequeue.jobs import Job, JobStatus, attempt_output_key, failure_key, job_record, outputs_due, record_due
from framequeue.retention import Sweeper
from framequeue.runtime import Runtime, open_runtime
from framequeue.service import SubmitRequest
from framequeue.tenants.auth import Principal

T0 = 1_000_000.0
ALICE = Principal("alice", "submit", "k1")


def _job(**kw: object) -> Job:
    job = Job(id="j1", pipeline="noop", pipeline_version="1", input_key="uploads/alice/a/in.bin", params={},
              status=JobStatus.SUCCEEDED, created_at_s=T0, updated_at_s=T0, expires_at_s=T0 + 60, timeout_s=60,
              max_attempts=3, finished_at_s=T0 + 10, retention_s=5.0, tenant="alice")
    return replace(job, **kw)  # type: ignore[arg-type]


def test_files_are_due_from_finished_plus_retention_on() -> None:
    assert not outputs_due(_job(), T0 + 14.999)
    assert outputs_due(_job(), T0 + 15)
    assert outputs_due(_job(retention_s=0.0), T0 + 10)


@pytest.mark.parametrize("kw", [
    {"status": JobStatus.QUEUED, "finished_at_s": None},
    {"status": JobStatus.RUNNING, "finished_at_s": None},
    {"status": JobStatus.RUNNING},  # a finished_at_s on a live job still does not make it due
    {"retention_s": None},
    {"outputs_expired_at_s": T0 + 15},
])
def test_live_unretained_or_swept_jobs_are_never_due(kw: dict[str, object]) -> None:
    assert not outputs_due(_job(**kw), T0 + 10**9)


def test_an_operator_cutoff_takes_ended_jobs_that_finished_before_it() -> None:
    assert outputs_due(_job(retention_s=None), T0, finished_before_s=T0 + 10.001)
    assert not outputs_due(_job(retention_s=None), T0, finished_before_s=T0 + 10)
    assert not outputs_due(_job(status=JobStatus.RUNNING), T0, finished_before_s=T0 + 100)


def test_records_are_due_record_retention_after_the_end_and_never_with_zero() -> None:
    assert not record_due(_job(), T0 + 109.999, 100.0)
    assert record_due(_job(), T0 + 110, 100.0)
    assert not record_due(_job(), T0 + 10**9, 0.0)
    assert not record_due(_job(status=JobStatus.QUEUED, finished_at_s=None), T0 + 10**9, 1.0)


def test_the_record_says_when_the_files_went() -> None:
    record = job_record(_job(outputs_expired_at_s=T0 + 15.5), output_location="o", failure_location="f")
    assert (record["retention_s"], record["outputs_expired_at"]) == (5.0, "1970-01-12T13:46:55.500Z")
    assert job_record(_job(), output_location="o", failure_location="f")["outputs_expired_at"] is None


# -- the sweeper on real parts --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now_s = T0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(home=tmp_path, broker_url=f"memory://{uuid.uuid4().hex}", retention_s=0.0,
                        retention_ceiling_s=3600.0).resolved()
    runtime = open_runtime(settings)
    yield runtime
    runtime.close()


def _submit(rt: Runtime, input_key: str, **kw: object) -> str:
    rt.objects.put(input_key, b"v" * 100)
    return str(rt.service.submit(SubmitRequest("noop", input_key, **kw), ALICE).record["id"])  # type: ignore[arg-type]


def _run(rt: Runtime, job_id: str, at_s: float, status: JobStatus = JobStatus.SUCCEEDED) -> None:
    """What a worker leaves: an abandoned attempt's output, the last attempt's, the failure document."""
    first = rt.store.claim(job_id, "w1", 1.0, at_s - 5)
    assert first is not None
    rt.objects.put(attempt_output_key(job_id, first.lease_token, "result.json"), b"a" * 7)
    claimed = rt.store.claim(job_id, "w2", 60.0, at_s - 2)  # the first lease ran out
    assert claimed is not None
    key = attempt_output_key(job_id, claimed.lease_token, "result.json")
    rt.objects.put(key, b"b" * 11)
    if status is JobStatus.FAILED:
        rt.objects.put(failure_key(job_id), b"{}")
    rt.store.finish(job_id, claimed.lease_token, status, at_s,
                    outputs={"result": key} if status is JobStatus.SUCCEEDED else None)


def _sweeper(rt: Runtime, clock: Clock, record_retention_s: float = 0.0) -> Sweeper:
    return Sweeper(rt.store, rt.objects, record_retention_s=record_retention_s, batch=10, clock=clock)


def test_the_sweeper_deletes_an_ended_jobs_files_once_and_never_a_live_ones(rt: Runtime) -> None:
    clock = Clock()
    done = _submit(rt, "uploads/alice/1/in.bin", retention_s=2.0)
    failed = _submit(rt, "uploads/alice/2/in.bin", retention_s=2.0)
    running = _submit(rt, "uploads/alice/3/in.bin", retention_s=0.0)
    _run(rt, done, T0 + 10)
    _run(rt, failed, T0 + 10, JobStatus.FAILED)
    assert rt.store.claim(running, "w3", 600.0, T0 + 10) is not None
    rt.objects.put(attempt_output_key(running, 1, "partial.json"), b"p")
    clock.now_s = T0 + 11.999
    assert _sweeper(rt, clock).expire_outputs() == []
    clock.now_s = T0 + 12
    preview = _sweeper(rt, clock).expire_outputs(dry_run=True)
    assert {s.job_id: (len(s.keys), s.size_bytes, s.done) for s in preview} == {
        done: (3, 7 + 11 + 100, False), failed: (4, 7 + 11 + 2 + 100, False)}
    assert rt.objects.size("uploads/alice/1/in.bin") == 100  # a dry run deletes nothing
    swept = _sweeper(rt, clock).expire_outputs()
    assert sorted(s.job_id for s in swept if s.done) == sorted([done, failed])
    for job_id in (done, failed):
        assert rt.objects.list(f"outputs/{job_id}/") == [] and rt.objects.size(failure_key(job_id)) is None
        record = rt.service.get(job_id, ALICE)
        assert record["outputs"] == {} and record["outputs_expired_at"] == "1970-01-12T13:46:52.000Z"
    assert rt.objects.size("uploads/alice/1/in.bin") is None
    assert rt.objects.list(f"outputs/{running}/") == [f"outputs/{running}/attempt-1/partial.json"]
    assert rt.objects.size("uploads/alice/3/in.bin") == 100
    assert _sweeper(rt, clock).expire_outputs() == []  # idempotent: nothing is due twice


def test_a_shared_upload_stays_while_another_job_needs_it_and_foreign_inputs_stay(rt: Runtime) -> None:
    clock = Clock()
    first = _submit(rt, "uploads/alice/s/in.bin", retention_s=1.0)
    second = _submit(rt, "uploads/alice/s/in.bin", retention_s=100.0)
    _run(rt, first, T0 + 10)
    _run(rt, second, T0 + 10)
    clock.now_s = T0 + 20
    assert [s.job_id for s in _sweeper(rt, clock).expire_outputs()] == [first]
    assert rt.objects.size("uploads/alice/s/in.bin") == 100  # the second job's files are kept: so is its input
    clock.now_s = T0 + 200
    assert [s.job_id for s in _sweeper(rt, clock).expire_outputs()] == [second]
    assert rt.objects.size("uploads/alice/s/in.bin") is None


def test_a_record_purge_deletes_the_files_left_then_the_record(rt: Runtime) -> None:
    clock = Clock()
    kept = _submit(rt, "uploads/alice/k/in.bin")  # no retention: files kept until the record goes
    _run(rt, kept, T0 + 10)
    clock.now_s = T0 + 109
    assert _sweeper(rt, clock, 100.0).purge_records() == []
    clock.now_s = T0 + 110
    assert [len(s.keys) for s in _sweeper(rt, clock, 100.0).purge_records(dry_run=True)] == [3]
    assert rt.service.get(kept, ALICE)["status"] == "succeeded"
    purged = _sweeper(rt, clock, 100.0).purge_records()
    assert [(s.job_id, s.done) for s in purged] == [(kept, True)]
    with pytest.raises(JobNotFound):
        rt.service.get(kept, ALICE)
    assert rt.objects.list(f"outputs/{kept}/") == [] and rt.objects.size("uploads/alice/k/in.bin") is None
    assert _sweeper(rt, clock, 0.0).purge_records(finished_before_s=T0 + 10**6) == []


@pytest.mark.parametrize("value", [-1.0, math.nan, 3600.5, math.inf])
def test_a_bad_retention_is_refused_with_the_field_named(rt: Runtime, value: float) -> None:
    rt.objects.put("uploads/alice/b/in.bin", b"x")
    with pytest.raises(InvalidParams, match="retention_s"):
        rt.service.submit(SubmitRequest("noop", "uploads/alice/b/in.bin", retention_s=value), ALICE)
    inv = Invocations(rt.service)
    with pytest.raises(InvalidParams, match="retention_s"):
        inv.create_endpoint(Endpoint(name="ep", pipeline="noop", output_path="s3://bucket/out", retention_s=value))


def test_the_retention_comes_from_the_request_the_endpoint_or_the_setting(rt: Runtime, tmp_path: Path) -> None:
    assert rt.store.get(_submit(rt, "uploads/alice/d/in.bin")).retention_s is None  # FQ_RETENTION_S=0: none
    assert rt.store.get(_submit(rt, "uploads/alice/d/in.bin", retention_s=0)).retention_s == 0.0
    inv = Invocations(rt.service)
    rt.store.create_endpoint(Endpoint(name="ep", pipeline="noop", output_path=rt.objects.url("out"),
                                      retention_s=60.0, tenant="alice"))
    assert inv.get_endpoint("ep", ALICE)["retention_s"] == 60.0
    invoked = inv.invoke(InvokeRequest("ep", body=b"x"), ALICE)
    assert rt.store.get(invoked.job["id"]).retention_s == 60.0
    rt.service.settings = replace(rt.service.settings, retention_s=30.0)
    assert rt.store.get(_submit(rt, "uploads/alice/d/in.bin")).retention_s == 30.0


def test_purge_refuses_a_moment_that_is_not_iso_naming_the_flag(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from framequeue.cli import main

    result = CliRunner().invoke(main, ["--home", str(tmp_path), "purge", "--dry-run", "--before", "yesterday"])
    assert result.exit_code == 1
    assert "invalid_params" in result.output and "--before" in result.output
    fine = CliRunner().invoke(main, ["--home", str(tmp_path), "purge", "--dry-run", "--before", "2026-01-31"])
    assert fine.exit_code == 0 and "would delete: the files of 0 jobs" in fine.output


def test_two_sweepers_at_once_report_each_job_once(rt: Runtime, tmp_path: Path) -> None:
    import threading

    from framequeue.jobstore import open_jobstore

    ids = [_submit(rt, f"uploads/alice/c{i}/in.bin", retention_s=1.0) for i in range(12)]
    for job_id in ids:
        _run(rt, job_id, T0 + 10)
    clock = Clock()
    clock.now_s = T0 + 20
    other = open_jobstore(rt.settings.database_url, lambda _: b"")  # a second API process's store
    sweepers = [_sweeper(rt, clock), Sweeper(other, rt.objects, record_retention_s=0.0, batch=10, clock=clock)]
    reports: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def sweep(i: int) -> None:
        start.wait()
        while swept := sweepers[i].expire_outputs():
            reports[i].extend(s.job_id for s in swept if s.done)

    threads = [threading.Thread(target=sweep, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    other.close()
    assert sorted(reports[0] + reports[1]) == sorted(ids)  # every job reported, none twice
    assert all(rt.objects.list(f"outputs/{job_id}/") == [] for job_id in ids)


def test_a_shared_upload_goes_when_both_its_jobs_are_swept_side_by_side(rt: Runtime) -> None:
    from framequeue.jobstore import open_jobstore

    clock = Clock()
    a = _submit(rt, "uploads/alice/p/in.bin", retention_s=1.0)
    b = _submit(rt, "uploads/alice/p/in.bin", retention_s=1.0)
    _run(rt, a, T0 + 10)
    _run(rt, b, T0 + 10)
    clock.now_s = T0 + 20
    other = open_jobstore(rt.settings.database_url, lambda _: b"")
    one, two = _sweeper(rt, clock), Sweeper(other, rt.objects, record_retention_s=0.0, batch=10, clock=clock)
    job_a, job_b = rt.store.get(a), rt.store.get(b)
    # both sweepers delete their job's files before either claims: each sees the other job unswept
    deleted_a, deleted_b = one._delete(job_a, dry_run=False), two._delete(job_b, dry_run=False)
    assert "uploads/alice/p/in.bin" not in deleted_a[0] + deleted_b[0]
    assert rt.objects.size("uploads/alice/p/in.bin") == 100
    first = one._claim(job_a, *deleted_a, clock.now_s)
    second = two._claim(job_b, *deleted_b, clock.now_s)
    other.close()
    assert first.done and second.done
    assert "uploads/alice/p/in.bin" in second.keys and rt.objects.size("uploads/alice/p/in.bin") is None
