"""The run totals contract: every job store backend commits what a successful run amounted to (seconds of
video, events, detections) with its terminal state, fenced like the rest of the commit, and keeps them."""

from __future__ import annotations

import pytest

from framequeue.errors import LeaseLost
from framequeue.jobs import JobStatus, RunTotals
from framequeue.jobstore import JobStore
from tests.contract.conftest import LEASE_S, T0, new_job


def test_a_new_job_has_no_totals(store: JobStore) -> None:
    store.create(new_job())
    assert store.get("job-1").totals == RunTotals(None, None, None)


def test_success_commits_the_totals(store: JobStore) -> None:
    store.create(new_job())
    claimed = store.claim("job-1", "w1", LEASE_S, T0 + 1)
    assert claimed is not None
    totals = RunTotals(video_s=12.5125, events_total=1207, detections_total=48_311)
    done = store.finish("job-1", claimed.lease_token, JobStatus.SUCCEEDED, T0 + 9, outputs={"v": "k"}, totals=totals)
    assert done.totals == totals
    assert store.get("job-1").totals == totals
    # one job among others, as the list views read it
    assert [j.totals for j in store.list_jobs(limit=10)] == [totals]


def test_partial_totals_keep_their_unknowns(store: JobStore) -> None:
    """A still has no seconds of video and a pipeline without a detector no detection count."""
    store.create(new_job())
    claimed = store.claim("job-1", "w1", LEASE_S, T0 + 1)
    assert claimed is not None
    totals = RunTotals(video_s=None, events_total=0, detections_total=None)
    store.finish("job-1", claimed.lease_token, JobStatus.SUCCEEDED, T0 + 2, totals=totals)
    assert store.get("job-1").totals == totals


def test_a_stale_attempt_commits_no_totals(store: JobStore) -> None:
    store.create(new_job())
    first = store.claim("job-1", "w1", LEASE_S, T0)
    assert first is not None
    assert store.reap(T0 + LEASE_S + 1) == ["job-1"]
    second = store.claim("job-1", "w2", LEASE_S, T0 + LEASE_S + 2)
    assert second is not None
    with pytest.raises(LeaseLost):
        store.finish("job-1", first.lease_token, JobStatus.SUCCEEDED, T0 + LEASE_S + 3, totals=RunTotals(1.0, 1, 1))
    assert store.get("job-1").totals == RunTotals()
    store.finish("job-1", second.lease_token, JobStatus.SUCCEEDED, T0 + LEASE_S + 4, totals=RunTotals(2.0, 3, 4))
    assert store.get("job-1").totals == RunTotals(2.0, 3, 4)


def test_a_failed_job_keeps_no_totals(store: JobStore) -> None:
    store.create(new_job())
    claimed = store.claim("job-1", "w1", LEASE_S, T0 + 1)
    assert claimed is not None
    store.finish("job-1", claimed.lease_token, JobStatus.FAILED, T0 + 2)
    assert store.get("job-1").totals == RunTotals()
