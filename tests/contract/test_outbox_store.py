"""The outbox contract (framequeue.notify.outbox.OutboxStore), run against every job store backend: a
terminal state and its webhook event are written together, then worked by the dispatcher's calls."""

from __future__ import annotations

import json

from framequeue.jobs import JobError, JobStatus
from framequeue.jobstore import JobStore
from tests.contract.conftest import LEASE_S, T0, new_job


def test_terminal_state_and_webhook_event_are_written_together(store: JobStore) -> None:
    store.create(new_job(webhook_url="https://example.com/h", webhook_secret="whsec_abc"))
    store.create(new_job("quiet"))
    job = store.claim("job-1", "w", LEASE_S, T0)
    assert job is not None
    assert store.due_events(T0 + 10, 10) == []
    store.finish("job-1", job.lease_token, JobStatus.FAILED, T0 + 5, error=JobError("corrupt_media", "bad"))
    quiet = store.claim("quiet", "w", LEASE_S, T0)
    assert quiet is not None
    store.finish("quiet", quiet.lease_token, JobStatus.SUCCEEDED, T0 + 5)
    events = store.due_events(T0 + 10, 10)
    assert len(events) == 1
    event = events[0]
    assert event.id == "evt_job-1_failed" and event.job_id == "job-1" and event.secret == "whsec_abc"
    assert json.loads(event.payload)["type"] == "job.failed"
    store.mark_retry(event.id, 1, T0 + 100, "HTTP 500")
    assert store.due_events(T0 + 10, 10) == []
    assert store.due_events(T0 + 100, 10)[0].attempts == 1
    store.mark_delivered(event.id, T0 + 101)
    assert store.due_events(T0 + 10_000, 10) == []
