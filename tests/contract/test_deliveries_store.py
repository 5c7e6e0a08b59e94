"""The job store's side of webhooks, run against every job store backend: progress events, deliveries per
job, replay, and endpoints disabled by a 410 (per tenant and URL)."""

from __future__ import annotations

import pytest

from framequeue.errors import DeliveryNotFound, LeaseLost
from framequeue.jobs import JobProgress, JobStatus
from framequeue.jobstore import JobStore
from framequeue.notify.outbox import ENDPOINT_DISABLED
from tests.contract.conftest import LEASE_S, T0, new_job

URL = "https://hooks.example.com/fq"
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _run(store: JobStore, job_id: str, tenant: str = "acme", url: str = URL) -> int:
    store.create(new_job(job_id, tenant=tenant, webhook_url=url, webhook_secret=SECRET))
    job = store.claim(job_id, "w1", LEASE_S, T0)
    assert job is not None
    return job.lease_token


def test_progress_events_are_numbered_fenced_and_superseded_by_the_terminal_one(store: JobStore) -> None:
    token = _run(store, "job-1")
    store.report_progress("job-1", token, JobProgress(5, 100, 1.0, 95.0), T0 + 1)  # no event asked
    store.report_progress("job-1", token, JobProgress(10, 100, 1.0, 90.0), T0 + 2, event=True)
    store.report_progress("job-1", token, JobProgress(20, 100, 1.0, 80.0), T0 + 3, event=True)
    due = store.due_events(T0 + 3, 10)
    assert [e.id for e in due] == ["evt_job-1_progress_1", "evt_job-1_progress_2"]
    # rendered from the running job (the renderer names it job.progress; the suite's own says job.running)
    assert b"job.running" in due[0].payload and due[0].secret == SECRET
    store.mark_delivered("evt_job-1_progress_1", T0 + 4)
    stale = store.claim("job-1", "w2", LEASE_S, T0 + LEASE_S + 1)  # the lease moved on: old token fenced
    assert stale is not None
    with pytest.raises(LeaseLost):
        store.report_progress("job-1", token, JobProgress(30, 100, 1.0, 70.0), T0 + LEASE_S + 2, event=True)
    store.finish("job-1", stale.lease_token, JobStatus.SUCCEEDED, T0 + LEASE_S + 3)
    by_id = {d.id: d for d in store.list_deliveries("job-1")}
    assert list(by_id) == ["evt_job-1_progress_1", "evt_job-1_progress_2", "evt_job-1_succeeded"]
    assert by_id["evt_job-1_progress_1"].delivered_at_s == T0 + 4
    assert by_id["evt_job-1_progress_2"].dead and by_id["evt_job-1_progress_2"].last_error == (
        "superseded by job.succeeded"
    )
    assert [e.id for e in store.due_events(T0 + LEASE_S + 3, 10)] == ["evt_job-1_succeeded"]


def test_progress_without_a_webhook_writes_no_event(store: JobStore) -> None:
    store.create(new_job("job-1"))
    job = store.claim("job-1", "w1", LEASE_S, T0)
    assert job is not None
    store.report_progress("job-1", job.lease_token, JobProgress(1, 2, 1.0, 1.0), T0 + 1, event=True)
    assert store.list_deliveries("job-1") == []


def test_replay_requeues_any_event_with_its_id_and_attempts(store: JobStore) -> None:
    store.finish("job-1", _run(store, "job-1"), JobStatus.SUCCEEDED, T0 + 5)
    store.mark_retry("evt_job-1_succeeded", 1, T0 + 10, "receiver answered 500")
    store.mark_dead("evt_job-1_succeeded", 2, "receiver answered 500")
    assert store.due_events(T0 + 1000, 10) == []
    replayed = store.replay_delivery("evt_job-1_succeeded", T0 + 1000)
    assert (replayed.dead, replayed.attempts, replayed.next_attempt_at_s) == (False, 2, T0 + 1000)
    (due,) = store.due_events(T0 + 1000, 10)
    assert (due.id, due.attempts) == ("evt_job-1_succeeded", 2)
    store.mark_delivered(due.id, T0 + 1001)
    again = store.replay_delivery(due.id, T0 + 2000)  # a delivered one may be sent again too
    assert again.delivered_at_s is None and again.attempts == 3
    assert store.get_delivery(due.id).url == URL
    with pytest.raises(DeliveryNotFound):
        store.replay_delivery("evt_nope", T0)
    with pytest.raises(DeliveryNotFound):
        store.get_delivery("evt_nope")


def test_410_disables_the_tenants_endpoint_until_enabled(store: JobStore) -> None:
    store.finish("job-1", _run(store, "job-1"), JobStatus.SUCCEEDED, T0 + 1)
    store.finish("job-2", _run(store, "job-2"), JobStatus.FAILED, T0 + 1)  # pending, same endpoint
    store.finish("job-b", _run(store, "job-b", tenant="bravo"), JobStatus.SUCCEEDED, T0 + 1)  # other tenant

    store.disable_endpoint("evt_job-1_succeeded", 1, "receiver answered 410 Gone", T0 + 2)
    assert store.get("job-1").status is JobStatus.SUCCEEDED  # the job is untouched
    first = store.get_delivery("evt_job-1_succeeded")
    assert first.dead and first.attempts == 1 and first.last_error == "receiver answered 410 Gone"
    second = store.get_delivery("evt_job-2_failed")
    assert second.dead and second.attempts == 0 and second.last_error == ENDPOINT_DISABLED
    assert [e.id for e in store.due_events(T0 + 2, 10)] == ["evt_job-b_succeeded"]

    disabled = store.webhook_disabled("acme", URL)
    assert disabled is not None and (disabled.disabled_at_s, disabled.event_id) == (T0 + 2, "evt_job-1_succeeded")
    assert store.webhook_disabled("bravo", URL) is None
    assert [d.url for d in store.list_disabled_webhooks("acme")] == [URL]
    assert store.list_disabled_webhooks("bravo") == []

    # a later event of the tenant to that URL is written dead, never sent
    store.finish("job-3", _run(store, "job-3"), JobStatus.SUCCEEDED, T0 + 3)
    third = store.get_delivery("evt_job-3_succeeded")
    assert third.dead and third.last_error == ENDPOINT_DISABLED and third.attempts == 0

    assert store.enable_webhook("acme", URL) is True
    assert store.enable_webhook("acme", URL) is False
    assert store.webhook_disabled("acme", URL) is None
    store.finish("job-4", _run(store, "job-4"), JobStatus.SUCCEEDED, T0 + 4)
    assert "evt_job-4_succeeded" in [e.id for e in store.due_events(T0 + 4, 10)]
