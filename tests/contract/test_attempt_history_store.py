"""The attempt history and events contract: every job store backend writes a job's attempts with the
transitions that start and end them, and the pipeline's events with its terminal state."""

from __future__ import annotations

import pytest

from framequeue.errors import LeaseLost
from framequeue.jobs import CANCELLED_BY_REQUEST, MAX_EVENTS, Attempt, JobError, JobStatus, Outcome
from framequeue.jobstore import JobStore
from tests.contract.conftest import LEASE_S, T0, new_job

FOLLOWING = {"type": "following_too_close", "start_s": 1.5, "end_s": 4.25, "min_time_gap_s": 0.61}


def test_claim_opens_an_attempt_and_finish_ends_it(store: JobStore) -> None:
    store.create(new_job())
    claimed = store.claim("job-1", "w1", LEASE_S, T0 + 1)
    assert claimed is not None
    assert claimed.attempt_history == (Attempt(1, "w1", T0 + 1),)
    assert store.get("job-1").attempt_history == (Attempt(1, "w1", T0 + 1),)
    done = store.finish("job-1", claimed.lease_token, JobStatus.SUCCEEDED, T0 + 9, outputs={"v": "k"},
                        events=[FOLLOWING])
    expected = (Attempt(1, "w1", T0 + 1, T0 + 9, Outcome.SUCCEEDED),)
    assert done.attempt_history == expected
    got = store.get("job-1")
    assert got.attempt_history == expected
    assert got.events == [FOLLOWING] and not got.events_truncated


def test_failure_and_timeout_carry_the_error(store: JobStore) -> None:
    for job_id, code, outcome in (("f", "decode_error", Outcome.FAILED), ("t", "timeout", Outcome.TIMEOUT)):
        store.create(new_job(job_id))
        claimed = store.claim(job_id, "w1", LEASE_S, T0 + 1)
        assert claimed is not None
        error = JobError(code, "it broke")
        store.finish(job_id, claimed.lease_token, JobStatus.FAILED, T0 + 2, error=error)
        assert store.get(job_id).attempt_history == (Attempt(1, "w1", T0 + 1, T0 + 2, outcome, error),)
        assert store.get(job_id).events == []


def test_a_reaped_lease_is_lost_and_the_next_claim_is_attempt_2(store: JobStore) -> None:
    store.create(new_job())
    first = store.claim("job-1", "w1", LEASE_S, T0)
    assert first is not None
    assert store.reap(T0 + LEASE_S + 1) == ["job-1"]
    lost = Attempt(1, "w1", T0, T0 + LEASE_S + 1, Outcome.LEASE_LOST)
    assert store.get("job-1").attempt_history == (lost,)
    second = store.claim("job-1", "w2", LEASE_S, T0 + LEASE_S + 2)
    assert second is not None
    assert second.attempt_history == (lost, Attempt(2, "w2", T0 + LEASE_S + 2))
    # the stale worker's writes are fenced off and change no history
    with pytest.raises(LeaseLost):
        store.finish("job-1", first.lease_token, JobStatus.SUCCEEDED, T0 + LEASE_S + 3, events=[FOLLOWING])
    with pytest.raises(LeaseLost):
        store.release("job-1", first.lease_token, T0 + LEASE_S + 3, count_attempt=False)
    assert store.get("job-1").attempt_history == second.attempt_history
    store.finish("job-1", second.lease_token, JobStatus.SUCCEEDED, T0 + LEASE_S + 4)
    got = store.get("job-1")
    assert got.attempt_history == (lost, Attempt(2, "w2", T0 + LEASE_S + 2, T0 + LEASE_S + 4, Outcome.SUCCEEDED))
    assert got.events == []


def test_a_claim_over_an_expired_lease_ends_the_open_attempt(store: JobStore) -> None:
    store.create(new_job())
    assert store.claim("job-1", "w1", LEASE_S, T0) is not None
    again = store.claim("job-1", "w2", LEASE_S, T0 + LEASE_S)
    assert again is not None
    assert again.attempt_history == (
        Attempt(1, "w1", T0, T0 + LEASE_S, Outcome.LEASE_LOST), Attempt(2, "w2", T0 + LEASE_S)
    )


def test_the_last_lost_lease_ends_the_job_and_its_attempt(store: JobStore) -> None:
    store.create(new_job(max_attempts=1))
    assert store.claim("job-1", "w1", LEASE_S, T0) is not None
    assert store.reap(T0 + LEASE_S) == []
    got = store.get("job-1")
    assert got.status is JobStatus.FAILED and got.error is not None and got.error.code == "attempts_exhausted"
    assert got.attempt_history == (Attempt(1, "w1", T0, T0 + LEASE_S, Outcome.LEASE_LOST),)


def test_release_hands_back_or_fails_the_attempt(store: JobStore) -> None:
    store.create(new_job())
    first = store.claim("job-1", "w1", LEASE_S, T0)
    assert first is not None
    store.release("job-1", first.lease_token, T0 + 1, count_attempt=False)
    second = store.claim("job-1", "w2", LEASE_S, T0 + 2)
    assert second is not None
    error = JobError("model_unavailable", "the model server did not answer")
    store.release("job-1", second.lease_token, T0 + 3, count_attempt=True, error=error)
    assert store.get("job-1").attempt_history == (
        Attempt(1, "w1", T0, T0 + 1, Outcome.HANDED_BACK),
        Attempt(2, "w2", T0 + 2, T0 + 3, Outcome.FAILED, error),
    )
    assert store.get("job-1").attempts == 1  # a handed-back attempt is in the history, not counted


def test_cancel_of_a_running_job_ends_its_attempt_when_the_worker_stops(store: JobStore) -> None:
    store.create(new_job())
    store.create(new_job("queued"))
    claimed = store.claim("job-1", "w1", LEASE_S, T0)
    assert claimed is not None
    store.cancel("job-1", T0 + 1)
    assert store.get("job-1").attempt_history == (Attempt(1, "w1", T0),)
    store.finish("job-1", claimed.lease_token, JobStatus.CANCELLED, T0 + 2, error=CANCELLED_BY_REQUEST)
    assert store.get("job-1").attempt_history == (
        Attempt(1, "w1", T0, T0 + 2, Outcome.CANCELLED, CANCELLED_BY_REQUEST),
    )
    store.cancel("queued", T0 + 3)
    assert store.get("queued").attempt_history == ()


def test_events_are_capped(store: JobStore) -> None:
    store.create(new_job())
    claimed = store.claim("job-1", "w1", LEASE_S, T0)
    assert claimed is not None
    many = [{"type": "distraction_long", "start_s": float(i), "end_s": i + 0.5} for i in range(MAX_EVENTS + 5)]
    store.finish("job-1", claimed.lease_token, JobStatus.SUCCEEDED, T0 + 1, events=many)
    got = store.get("job-1")
    assert got.events == many[:MAX_EVENTS] and got.events_truncated
