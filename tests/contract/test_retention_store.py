"""Retention in every job store: which ended jobs' files are due (never a queued or running job's), the
claim of an expiry (only one caller gets it), shared inputs, and the purge of old records."""

from __future__ import annotations

import pytest

from framequeue.endpoints.async_endpoints import Endpoint
from framequeue.errors import JobNotFound
from framequeue.jobs import JobStatus
from framequeue.jobstore import JobStore
from tests.contract.conftest import LEASE_S, T0, new_job


def _ended(store: JobStore, job_id: str, at_s: float, status: JobStatus = JobStatus.SUCCEEDED, **kw: object) -> None:
    store.create(new_job(job_id, **kw))
    claimed = store.claim(job_id, "w1", LEASE_S, at_s - 1)
    assert claimed is not None
    outputs = {"detections": f"outputs/{job_id}/attempt-1/detections.jsonl"} if status is JobStatus.SUCCEEDED else None
    store.finish(job_id, claimed.lease_token, status, at_s, outputs=outputs)


def test_a_job_keeps_its_retention_and_starts_unswept(store: JobStore) -> None:
    store.create(new_job("j1", retention_s=60.0))
    store.create(new_job("j2"))
    assert (store.get("j1").retention_s, store.get("j1").outputs_expired_at_s) == (60.0, None)
    assert store.get("j2").retention_s is None


def test_files_are_due_exactly_at_finished_plus_retention(store: JobStore) -> None:
    _ended(store, "j1", T0 + 10, retention_s=60.0)
    assert store.outputs_due(T0 + 69.999, 10) == []
    assert [j.id for j in store.outputs_due(T0 + 70, 10)] == ["j1"]


def test_queued_running_and_unretained_jobs_are_never_due(store: JobStore) -> None:
    store.create(new_job("queued", retention_s=0.0))
    store.create(new_job("running", retention_s=0.0))
    assert store.claim("running", "w1", LEASE_S, T0 + 1) is not None
    _ended(store, "kept", T0 + 10)  # no retention_s: kept
    assert store.outputs_due(T0 + 10**6, 10) == []
    # an operator's cutoff (purge --before) takes ended jobs whatever their retention, still not the live ones
    assert [j.id for j in store.outputs_due(T0 + 20, 10, finished_before_s=T0 + 11)] == ["kept"]
    assert store.outputs_due(T0 + 20, 10, finished_before_s=T0 + 10) == []


def test_every_ended_state_is_due_oldest_first_in_bounded_batches(store: JobStore) -> None:
    _ended(store, "late", T0 + 30, retention_s=1.0)
    _ended(store, "failed", T0 + 10, JobStatus.FAILED, retention_s=1.0)
    store.create(new_job("cancelled", retention_s=1.0))
    store.cancel("cancelled", T0 + 20)
    assert [j.id for j in store.outputs_due(T0 + 100, 10)] == ["failed", "cancelled", "late"]
    assert [j.id for j in store.outputs_due(T0 + 100, 2)] == ["failed", "cancelled"]


def test_an_expiry_is_claimed_once_and_empties_the_outputs(store: JobStore) -> None:
    _ended(store, "j1", T0 + 10, retention_s=5.0)
    assert store.get("j1").outputs
    assert store.mark_outputs_expired("j1", T0 + 20) is True
    assert store.mark_outputs_expired("j1", T0 + 21) is False  # a second sweeper does not report it
    job = store.get("j1")
    assert (job.outputs_expired_at_s, job.outputs, job.status) == (T0 + 20, {}, JobStatus.SUCCEEDED)
    assert store.outputs_due(T0 + 100, 10) == []


def test_a_live_job_cannot_be_marked_expired(store: JobStore) -> None:
    store.create(new_job("j1", retention_s=0.0))
    assert store.mark_outputs_expired("j1", T0 + 1) is False
    assert store.claim("j1", "w1", LEASE_S, T0 + 1) is not None
    assert store.mark_outputs_expired("j1", T0 + 2) is False
    assert store.get("j1").outputs_expired_at_s is None


def test_an_input_is_in_use_while_another_unswept_job_names_it(store: JobStore) -> None:
    _ended(store, "a", T0 + 10, retention_s=1.0, input_key="uploads/t/shared.mp4")
    store.create(new_job("b", input_key="uploads/t/shared.mp4"))
    store.create(new_job("c", input_key="uploads/t/other.mp4"))
    assert store.input_in_use("uploads/t/shared.mp4", "a") is True  # b still needs it
    assert store.input_in_use("uploads/t/other.mp4", "c") is False
    assert store.input_in_use("uploads/t/shared.mp4", "b") is True  # a's files are not swept yet
    assert store.mark_outputs_expired("a", T0 + 20)
    assert store.input_in_use("uploads/t/shared.mp4", "b") is False


def test_records_are_due_and_purged_once_with_their_outbox(store: JobStore) -> None:
    _ended(store, "old", T0 + 10, webhook_url="https://hooks.example.com/h", webhook_secret="whsec_c2VjcmV0",
           idempotency_key="t:k1")
    _ended(store, "new", T0 + 50)
    store.create(new_job("queued"))
    assert store.list_deliveries("old")
    assert [j.id for j in store.records_due(T0 + 10, 10)] == ["old"]
    assert store.purge_record("new", T0 + 10) is False  # ended after the cutoff
    assert store.purge_record("queued", T0 + 10**6) is False  # never a live job
    assert store.purge_record("old", T0 + 10) is True
    assert store.purge_record("old", T0 + 10) is False
    with pytest.raises(JobNotFound):
        store.get("old")
    assert store.list_deliveries("old") == []
    assert [j.id for j in store.records_due(T0 + 10**6, 10)] == ["new"]
    # the idempotency key is free again
    _, created = store.create(new_job("again", idempotency_key="t:k1"))
    assert created


def test_an_endpoint_keeps_its_retention(store: JobStore) -> None:
    ep = Endpoint(name="e1", pipeline="detect", output_path="s3://out/r", retention_s=3600.0, created_at_s=T0)
    store.create_endpoint(ep)
    assert store.get_endpoint("e1", "default").retention_s == 3600.0
