"""The jobs contract (framequeue.jobstore.JobStateStore), run against every job store backend."""

from __future__ import annotations

import threading

import pytest

from framequeue.errors import IdempotencyConflict, JobNotFound, LeaseLost
from framequeue.jobs import Job, JobProgress, JobStatus
from framequeue.jobstore import JobStore
from tests.contract.conftest import LEASE_S, T0, new_job


def test_create_get_and_list(store: JobStore) -> None:
    for i in range(3):
        store.create(new_job(f"job-{i}"))
    assert store.get("job-1").params == {"sample_fps": 5}
    assert [j.id for j in store.list_jobs()] == ["job-2", "job-1", "job-0"]
    assert [j.id for j in store.list_jobs(limit=2)] == ["job-2", "job-1"]
    assert [j.id for j in store.list_jobs(limit=2, after="job-1")] == ["job-0"]
    assert store.list_jobs(status=JobStatus.RUNNING) == []
    with pytest.raises(JobNotFound):
        store.get("nope")


def test_idempotency_same_body_same_job_other_body_conflict(store: JobStore) -> None:
    first, created = store.create(new_job("a", idempotency_key="k1"), "hash-1")
    again, created_again = store.create(new_job("b", idempotency_key="k1"), "hash-1")
    assert created and not created_again and again.id == first.id == "a"
    with pytest.raises(IdempotencyConflict):
        store.create(new_job("c", idempotency_key="k1"), "hash-2")
    assert [j.id for j in store.list_jobs()] == ["a"]


def test_concurrent_submits_with_one_key_make_one_job(store: JobStore) -> None:
    ids: list[str] = []
    barrier = threading.Barrier(8)

    def submit(i: int) -> None:
        barrier.wait()
        job, _ = store.create(new_job(f"c{i}", idempotency_key="same"), "h")
        ids.append(job.id)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1 and len(store.list_jobs()) == 1


def test_claim_counts_attempts_and_issues_a_new_token(store: JobStore) -> None:
    store.create(new_job())
    claimed = store.claim("job-1", "w1", LEASE_S, T0 + 1)
    assert claimed is not None
    assert (claimed.status, claimed.attempts, claimed.lease_owner) == (JobStatus.RUNNING, 1, "w1")
    assert claimed.lease_deadline_s == pytest.approx(T0 + 1 + LEASE_S)
    assert claimed.started_at_s == pytest.approx(T0 + 1)
    # leased: nobody else gets it until the lease runs out
    assert store.claim("job-1", "w2", LEASE_S, T0 + 60) is None
    stolen = store.claim("job-1", "w2", LEASE_S, T0 + 1 + LEASE_S)
    assert stolen is not None and stolen.attempts == 2 and stolen.lease_token == claimed.lease_token + 1


def test_only_one_of_two_racing_claims_wins(store: JobStore) -> None:
    store.create(new_job())
    results: list[Job | None] = []
    barrier = threading.Barrier(2)

    def claim(owner: str) -> None:
        barrier.wait()
        results.append(store.claim("job-1", owner, LEASE_S, T0))

    threads = [threading.Thread(target=claim, args=(o,)) for o in ("w1", "w2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1


def test_a_stale_token_can_neither_report_nor_commit(store: JobStore) -> None:
    store.create(new_job())
    old = store.claim("job-1", "w1", LEASE_S, T0)
    assert old is not None
    new = store.claim("job-1", "w2", LEASE_S, T0 + LEASE_S + 1)
    assert new is not None
    later = T0 + LEASE_S + 2
    with pytest.raises(LeaseLost):
        store.renew("job-1", old.lease_token, LEASE_S, later)
    with pytest.raises(LeaseLost):
        store.report_progress("job-1", old.lease_token, JobProgress(10, 100, 5.0, 18.0), later)
    with pytest.raises(LeaseLost):
        store.finish("job-1", old.lease_token, JobStatus.SUCCEEDED, later, outputs={"video": "stale"})
    store.report_progress("job-1", new.lease_token, JobProgress(50, 100, 10.0, 5.0), later)
    done = store.finish("job-1", new.lease_token, JobStatus.SUCCEEDED, later + 1, outputs={"video": "v2"})
    assert done.status is JobStatus.SUCCEEDED and done.outputs == {"video": "v2"}
    assert done.progress.frames_done == 50 and done.finished_at_s == pytest.approx(later + 1)
    with pytest.raises(LeaseLost):  # a terminal job takes no more writes, even with the right token
        store.finish("job-1", new.lease_token, JobStatus.FAILED, later + 2)


def test_renew_extends_and_reports_cancel(store: JobStore) -> None:
    store.create(new_job())
    job = store.claim("job-1", "w1", LEASE_S, T0)
    assert job is not None
    assert store.renew("job-1", job.lease_token, LEASE_S, T0 + 100) is False
    assert store.get("job-1").lease_deadline_s == pytest.approx(T0 + 100 + LEASE_S)
    cancelled = store.cancel("job-1", T0 + 101)
    assert cancelled.status is JobStatus.RUNNING and cancelled.cancel_requested
    assert store.renew("job-1", job.lease_token, LEASE_S, T0 + 102) is True
    assert store.report_progress("job-1", job.lease_token, JobProgress(1, 2, 1.0, 1.0), T0 + 103) is True


def test_cancel_queued_ends_at_once_and_is_idempotent_after(store: JobStore) -> None:
    store.create(new_job())
    assert store.cancel("job-1", T0 + 1).status is JobStatus.CANCELLED
    assert store.cancel("job-1", T0 + 2).status is JobStatus.CANCELLED
    assert store.claim("job-1", "w1", LEASE_S, T0 + 3) is None


def test_reap_requeues_expired_leases_and_expires_old_queued_jobs(store: JobStore) -> None:
    store.create(new_job("run"))
    store.create(new_job("old", expires_at_s=T0 + 10))
    job = store.claim("run", "w1", LEASE_S, T0)
    assert job is not None
    assert store.reap(T0 + 5) == []
    requeued = store.reap(T0 + LEASE_S + 1)
    assert requeued == ["run"]
    back = store.get("run")
    assert back.status is JobStatus.QUEUED and back.lease_owner is None and back.attempts == 1
    old = store.get("old")
    assert old.status is JobStatus.EXPIRED and old.error is not None and old.error.code == "expired"


def test_out_of_attempts_fails_with_attempts_exhausted(store: JobStore) -> None:
    store.create(new_job(max_attempts=2))
    now = T0
    for _ in range(2):
        job = store.claim("job-1", "w", LEASE_S, now)
        assert job is not None
        now += LEASE_S + 1
        store.reap(now)
    ended = store.get("job-1")
    assert ended.status is JobStatus.FAILED and ended.attempts == 2
    assert ended.error is not None and ended.error.code == "attempts_exhausted"


def test_release_hands_back_without_burning_an_attempt(store: JobStore) -> None:
    store.create(new_job())
    job = store.claim("job-1", "w", LEASE_S, T0)
    assert job is not None
    back = store.release("job-1", job.lease_token, T0 + 1, count_attempt=False)
    assert back.status is JobStatus.QUEUED and back.attempts == 0
    job = store.claim("job-1", "w", LEASE_S, T0 + 2)
    assert job is not None
    assert store.release("job-1", job.lease_token, T0 + 3, count_attempt=True).attempts == 1


def test_a_dead_lettered_queued_job_fails_but_a_running_one_is_left_to_its_lease(store: JobStore) -> None:
    store.create(new_job("waiting"))
    store.create(new_job("busy"))
    assert store.claim("busy", "w", LEASE_S, T0) is not None
    assert store.fail_dead_lettered("waiting", T0 + 1) is True
    assert store.fail_dead_lettered("busy", T0 + 1) is False
    assert store.fail_dead_lettered("missing", T0 + 1) is False
    waiting = store.get("waiting")
    assert waiting.status is JobStatus.FAILED and waiting.error is not None
    assert waiting.error.code == "attempts_exhausted" and "dead-letter" in waiting.error.message
    assert store.get("busy").status is JobStatus.RUNNING


def test_jobs_without_a_confirmed_message_are_found_for_the_reaper(store: JobStore) -> None:
    store.create(new_job("sent"))
    store.create(new_job("lost"))
    store.mark_published("sent", T0 + 1)
    assert store.unpublished(T0 - 1, 10) == []  # too young: its submit may still be publishing
    assert store.unpublished(T0 + 5, 10) == ["lost"]
    store.mark_published("lost", T0 + 6)
    assert store.unpublished(T0 + 10, 10) == []
    # a job put back in the queue needs a new message
    job = store.claim("sent", "w", LEASE_S, T0 + 7)
    assert job is not None
    assert store.reap(T0 + 7 + LEASE_S) == ["sent"]
    assert store.unpublished(T0 + 10_000, 10) == ["sent"]


def test_jobs_queued_long_after_their_publish_are_found_again(store: JobStore) -> None:
    store.create(new_job("waiting"))
    store.mark_published("waiting", T0 + 1)
    assert store.unpublished(T0 + 100, 10) == []
    assert store.unpublished(T0 + 100, 10, stale_before_s=T0 + 0.5) == []
    assert store.unpublished(T0 + 100, 10, stale_before_s=T0 + 2) == ["waiting"]
    store.mark_published("waiting", T0 + 700)  # republished: quiet for another interval
    assert store.unpublished(T0 + 800, 10, stale_before_s=T0 + 200) == []
    job = store.claim("waiting", "w", LEASE_S, T0 + 800)
    assert job is not None  # a running job is never republished
    assert store.unpublished(T0 + 10_000, 10, stale_before_s=T0 + 10_000) == []


def test_discard_unpublished_removes_only_a_job_the_broker_never_got(store: JobStore) -> None:
    store.create(new_job("refused"))
    store.create(new_job("published"))
    store.mark_published("published", T0 + 1)
    store.create(new_job("started"))
    assert store.claim("started", "w1", LEASE_S, T0 + 1) is not None
    assert store.discard_unpublished("refused") is True
    assert store.discard_unpublished("published") is False
    assert store.discard_unpublished("started") is False
    assert store.discard_unpublished("refused") is False
    assert sorted(j.id for j in store.list_jobs()) == ["published", "started"]
