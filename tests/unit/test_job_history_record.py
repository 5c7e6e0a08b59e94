"""How a job record shows its attempts and its pipeline's events, and the pure rules the stores share."""

from __future__ import annotations

from dataclasses import replace

from framequeue.jobs import (
    MAX_EVENTS,
    Attempt,
    Job,
    JobError,
    JobStatus,
    Outcome,
    attempt_begun,
    attempt_ended,
    bounded_events,
    end_outcome,
    job_record,
)

T0 = 100.0


def _job(**kw: object) -> Job:
    job = Job(
        id="j", pipeline="road", pipeline_version="1", input_key="uploads/j/in.mp4", params={},
        status=JobStatus.QUEUED, created_at_s=T0, updated_at_s=T0, expires_at_s=T0 + 60, timeout_s=30,
        max_attempts=3,
    )
    return replace(job, **kw)  # type: ignore[arg-type]


def _record(job: Job) -> dict[str, object]:
    return job_record(job, output_location="file:///o/", failure_location="file:///f")


def test_a_new_job_has_no_attempts_and_no_events() -> None:
    record = _record(_job())
    assert record["attempt_history"] == [] and record["events"] == [] and record["events_truncated"] is False


def test_attempts_render_with_iso_times_and_errors() -> None:
    lost = Attempt(1, "w1", T0, T0 + 1.5, Outcome.LEASE_LOST)
    running = Attempt(2, "w2", T0 + 2)
    failed = Attempt(2, "w2", T0 + 2, T0 + 3, Outcome.TIMEOUT, JobError("timeout", "ran longer than 30 s"))
    assert _record(_job(attempt_history=(lost, running)))["attempt_history"] == [
        {"attempt": 1, "worker": "w1", "started_at": "1970-01-01T00:01:40.000Z",
         "ended_at": "1970-01-01T00:01:41.500Z", "outcome": "lease_lost", "error": None},
        {"attempt": 2, "worker": "w2", "started_at": "1970-01-01T00:01:42.000Z", "ended_at": None,
         "outcome": None, "error": None},
    ]
    assert _record(_job(attempt_history=(failed,)))["attempt_history"] == [
        {"attempt": 2, "worker": "w2", "started_at": "1970-01-01T00:01:42.000Z",
         "ended_at": "1970-01-01T00:01:43.000Z", "outcome": "timeout",
         "error": {"code": "timeout", "message": "ran longer than 30 s"}},
    ]
    assert Attempt.from_json(failed.to_json()) == failed


def test_events_render_as_stored() -> None:
    event = {"type": "following_too_close", "start_s": 1.0, "end_s": 3.5, "min_time_gap_s": 0.7}
    record = _record(_job(events=[event], events_truncated=True))
    assert record["events"] == [event] and record["events_truncated"] is True


def test_history_rules() -> None:
    job = _job(attempt_history=(Attempt(1, "w1", T0),))
    assert attempt_begun(job, "w2", T0 + 5) == (
        Attempt(1, "w1", T0, T0 + 5, Outcome.LEASE_LOST), Attempt(2, "w2", T0 + 5)
    )
    closed = attempt_ended(job.attempt_history, Outcome.SUCCEEDED, T0 + 1)
    assert attempt_ended(closed, Outcome.FAILED, T0 + 2) == closed  # an ended attempt stays as it ended
    assert attempt_ended((), Outcome.FAILED, T0) == ()
    assert end_outcome(JobStatus.SUCCEEDED, None) is Outcome.SUCCEEDED
    assert end_outcome(JobStatus.CANCELLED, JobError("cancelled", "x")) is Outcome.CANCELLED
    assert end_outcome(JobStatus.FAILED, JobError("timeout", "x")) is Outcome.TIMEOUT
    assert end_outcome(JobStatus.FAILED, JobError("decode_error", "x")) is Outcome.FAILED


def test_events_are_bounded() -> None:
    few = [{"type": "a", "start_s": 0.0, "end_s": 1.0}]
    assert bounded_events(few) == (few, False)
    many = few * (MAX_EVENTS + 1)
    kept, truncated = bounded_events(many)
    assert len(kept) == MAX_EVENTS and truncated
