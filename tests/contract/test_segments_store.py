"""The split-job contract (framequeue.jobstore.ports.SegmentStore): every job store parks a split parent in
the transaction that creates its segments, counts the segments' successes in the transaction that commits
each, queues the parent for its stitch exactly once, fails it when a segment ends otherwise, and cascades a
cancel, all fenced by the same lease tokens as any job."""

from __future__ import annotations

import threading

import pytest

from framequeue.errors import InvalidTransition, LeaseLost
from framequeue.jobs import Job, JobError, JobStatus, Outcome, segment_job
from framequeue.jobstore import JobStore
from tests.contract.conftest import LEASE_S, T0, new_job


def _hooked(job_id: str = "parent") -> Job:
    return new_job(job_id, webhook_url="https://example.com/hook", webhook_secret="whsec_c2VjcmV0c2VjcmV0")


def _split(store: JobStore, n: int = 3, parent_id: str = "parent") -> tuple[Job, list[Job]]:
    """A parent claimed and split into n segments; returns (the parked parent, the segments made)."""
    store.create(_hooked(parent_id))
    claimed = store.claim(parent_id, "w1", LEASE_S, T0 + 1)
    assert claimed is not None
    segments = [
        segment_job(claimed, i, f"{parent_id}-s{i}", f"segments/{parent_id}/{i}.mp4",
                    {"index": i, "start_s": 60.0 * i, "end_s": 60.0 * (i + 1)}, T0 + 2)
        for i in range(n)
    ]
    parked = store.split(parent_id, claimed.lease_token, segments, T0 + 2)
    return parked, segments


def _run(store: JobStore, job_id: str, at_s: float, status: JobStatus = JobStatus.SUCCEEDED,
         error: JobError | None = None) -> Job:
    claimed = store.claim(job_id, "w2", LEASE_S, at_s)
    assert claimed is not None, job_id
    return store.finish(job_id, claimed.lease_token, status, at_s + 1, error=error)


def _terminal_events(store: JobStore, job_id: str) -> list[str]:
    return [d.id for d in store.list_deliveries(job_id) if "progress" not in d.id]


def test_split_parks_the_parent_and_makes_queued_segments(store: JobStore) -> None:
    parked, made = _split(store)
    assert parked.status is JobStatus.RUNNING and parked.parked
    assert parked.segments_total == 3 and parked.segments_done == 0
    assert parked.lease_owner is None and parked.lease_deadline_s is None
    assert parked.attempts == 0  # the split attempt is not counted against the stitch
    assert parked.attempt_history[-1].outcome is Outcome.SPLIT
    # the splitting worker's heartbeat and writes are fenced off: no lease comes back to the parked parent
    with pytest.raises(LeaseLost):
        store.renew("parent", parked.lease_token - 1, LEASE_S, T0 + 3)
    with pytest.raises(LeaseLost):
        store.finish("parent", parked.lease_token - 1, JobStatus.SUCCEEDED, T0 + 3)
    assert store.get("parent").parked
    segments = store.segments("parent")
    assert [s.id for s in segments] == [s.id for s in made]
    assert [s.segment_index for s in segments] == [0, 1, 2]
    assert all(s.status is JobStatus.QUEUED and s.parent_id == "parent" for s in segments)
    assert segments[1].params["segment"]["start_s"] == 60.0 and segments[1].params["sample_fps"] == 5
    assert segments[0].webhook_url is None and segments[0].tenant == "default"
    # not reapable while parked, not claimable by a stray message, hidden from listings and quotas
    assert store.reap(T0 + 10 * LEASE_S) == []
    assert store.get("parent").status is JobStatus.RUNNING
    assert store.claim("parent", "w3", LEASE_S, T0 + 3) is None
    assert [j.id for j in store.list_jobs()] == ["parent"]
    assert store.count_queued("default") == 0
    assert store.unpublished(T0 + 100, 10) == [s.id for s in segments]


def test_split_is_fenced_and_happens_once(store: JobStore) -> None:
    store.create(new_job("parent"))
    first = store.claim("parent", "w1", LEASE_S, T0)
    assert first is not None
    store.reap(T0 + LEASE_S + 1)
    second = store.claim("parent", "w2", LEASE_S, T0 + LEASE_S + 2)
    assert second is not None
    seg = segment_job(first, 0, "s0", "segments/p/0.mp4", {"index": 0}, T0 + 1)
    with pytest.raises(LeaseLost):
        store.split("parent", first.lease_token, [seg], T0 + LEASE_S + 3)
    assert store.segments("parent") == []
    store.split("parent", second.lease_token, [seg], T0 + LEASE_S + 3)
    with pytest.raises((LeaseLost, InvalidTransition)):
        store.split("parent", second.lease_token, [seg], T0 + LEASE_S + 4)
    assert len(store.segments("parent")) == 1


def test_segments_count_and_the_last_queues_the_parent_for_its_stitch(store: JobStore) -> None:
    _split(store)
    _run(store, "parent-s2", T0 + 10)
    _run(store, "parent-s0", T0 + 20)
    parent = store.get("parent")
    assert parent.status is JobStatus.RUNNING and parent.segments_done == 2 and parent.parked
    _run(store, "parent-s1", T0 + 30)
    parent = store.get("parent")
    assert parent.status is JobStatus.QUEUED and parent.segments_done == 3
    assert store.unpublished(T0 + 100, 10) == ["parent"]  # the reaper publishes it if the caller does not
    assert _terminal_events(store, "parent") == []
    stitch = store.claim("parent", "w4", LEASE_S, T0 + 40)
    assert stitch is not None and stitch.attempts == 1
    done = store.finish("parent", stitch.lease_token, JobStatus.SUCCEEDED, T0 + 50, outputs={"video": "k"})
    assert done.status is JobStatus.SUCCEEDED
    assert len(_terminal_events(store, "parent")) == 1
    assert all(_terminal_events(store, s.id) == [] for s in store.segments("parent"))


def _finish_together(store: JobStore, parent_id: str, tokens: dict[int, int]) -> list[BaseException]:
    """Finish the parent's segments 0..n-1 from n threads released at once; the errors they raised."""
    barrier = threading.Barrier(len(tokens))
    errors: list[BaseException] = []

    def finish(i: int) -> None:
        barrier.wait()
        try:
            store.finish(f"{parent_id}-s{i}", tokens[i], JobStatus.SUCCEEDED, T0 + 6)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=finish, args=(i,)) for i in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_two_segments_finishing_at_once_queue_the_parent_exactly_once(store: JobStore) -> None:
    for round_ in range(3):
        parent_id = f"p{round_}"
        _split(store, 2, parent_id)
        tokens = {}
        for i in range(2):
            claimed = store.claim(f"{parent_id}-s{i}", f"w{i}", LEASE_S, T0 + 5)
            assert claimed is not None
            tokens[i] = claimed.lease_token
        assert _finish_together(store, parent_id, tokens) == []
        parent = store.get(parent_id)
        assert parent.status is JobStatus.QUEUED and parent.segments_done == 2
        assert store.claim(parent_id, "w9", LEASE_S, T0 + 7) is not None
        assert store.claim(parent_id, "w8", LEASE_S, T0 + 7) is None


def test_a_retried_segment_counts_once_and_the_parent_waits(store: JobStore) -> None:
    _split(store, 2)
    claimed = store.claim("parent-s0", "w2", LEASE_S, T0 + 5)
    assert claimed is not None
    store.release("parent-s0", claimed.lease_token, T0 + 6, count_attempt=True,
                  error=JobError("worker_crashed", "died"))
    assert store.get("parent").segments_done == 0 and store.get("parent").parked
    _run(store, "parent-s0", T0 + 7)
    _run(store, "parent-s1", T0 + 9)
    assert store.get("parent").status is JobStatus.QUEUED and store.get("parent").segments_done == 2


def test_a_segment_that_exhausts_its_attempts_fails_the_parent_and_cancels_its_siblings(store: JobStore) -> None:
    _split(store, 3)
    running = store.claim("parent-s1", "w2", LEASE_S, T0 + 5)
    assert running is not None
    now = T0 + 5
    for _ in range(3):  # the reaper takes s0 back after each lost lease; the third loss exhausts it
        assert store.claim("parent-s0", "w3", LEASE_S, now) is not None
        now += LEASE_S + 1
        store.renew("parent-s1", running.lease_token, 10 * LEASE_S, now - 1)
        store.reap(now)
    failed = store.get("parent-s0")
    assert failed.status is JobStatus.FAILED and failed.error is not None
    parent = store.get("parent")
    assert parent.status is JobStatus.FAILED and parent.error is not None
    assert parent.error.code == "segment_failed"
    assert "segment 0" in parent.error.message and "attempts_exhausted" in parent.error.message
    assert len(_terminal_events(store, "parent")) == 1
    assert store.get("parent-s2").status is JobStatus.CANCELLED  # queued: ended at once
    assert store.get("parent-s1").cancel_requested  # running: its worker is asked to stop
    assert store.finish("parent-s1", running.lease_token, JobStatus.CANCELLED, now).status is JobStatus.CANCELLED
    assert store.get("parent").status is JobStatus.FAILED


def test_a_failed_segment_commit_fails_the_parent(store: JobStore) -> None:
    _split(store, 2)
    _run(store, "parent-s1", T0 + 5, JobStatus.FAILED, JobError("corrupt_media", "bad packet"))
    parent = store.get("parent")
    assert parent.status is JobStatus.FAILED and parent.error is not None
    assert "segment 1" in parent.error.message and "corrupt_media" in parent.error.message
    assert store.get("parent-s0").status is JobStatus.CANCELLED


def test_cancel_of_a_parked_parent_ends_it_and_cascades(store: JobStore) -> None:
    _split(store, 3)
    _run(store, "parent-s0", T0 + 5)
    running = store.claim("parent-s1", "w2", LEASE_S, T0 + 6)
    assert running is not None
    answer = store.cancel("parent", T0 + 7)
    assert answer.status is JobStatus.CANCELLED
    assert store.get("parent-s0").status is JobStatus.SUCCEEDED
    assert store.get("parent-s1").cancel_requested
    assert store.renew("parent-s1", running.lease_token, LEASE_S, T0 + 8) is True
    assert store.get("parent-s2").status is JobStatus.CANCELLED
    assert len(_terminal_events(store, "parent")) == 1
    # the running segment's end changes nothing more
    store.finish("parent-s1", running.lease_token, JobStatus.SUCCEEDED, T0 + 9)
    assert store.get("parent").status is JobStatus.CANCELLED and store.get("parent").segments_done == 1


def test_a_cancel_asked_during_the_split_ends_the_parent_instead(store: JobStore) -> None:
    store.create(new_job("parent"))
    claimed = store.claim("parent", "w1", LEASE_S, T0)
    assert claimed is not None
    store.cancel("parent", T0 + 1)
    seg = segment_job(claimed, 0, "s0", "segments/p/0.mp4", {"index": 0}, T0 + 1)
    assert store.split("parent", claimed.lease_token, [seg], T0 + 2).status is JobStatus.CANCELLED
    assert store.segments("parent") == []


def test_the_stitch_is_fenced_and_reaped_like_any_attempt(store: JobStore) -> None:
    _split(store, 1)
    _run(store, "parent-s0", T0 + 5)
    first = store.claim("parent", "w1", LEASE_S, T0 + 10)
    assert first is not None
    assert store.reap(T0 + 10 + LEASE_S + 1) == ["parent"]
    second = store.claim("parent", "w2", LEASE_S, T0 + 10 + LEASE_S + 2)
    assert second is not None and second.lease_token > first.lease_token
    with pytest.raises(LeaseLost):
        store.finish("parent", first.lease_token, JobStatus.SUCCEEDED, T0 + 10 + LEASE_S + 3)
    store.finish("parent", second.lease_token, JobStatus.SUCCEEDED, T0 + 10 + LEASE_S + 4)
    assert store.get("parent").status is JobStatus.SUCCEEDED
    assert len(_terminal_events(store, "parent")) == 1
