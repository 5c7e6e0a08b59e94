import pytest

from framequeue.errors import InvalidTransition
from framequeue.jobs import TERMINAL, TRANSITIONS, Job, JobStatus, check_transition, job_record


def make_job(**kw: object) -> Job:
    base = dict(
        id="j1", pipeline="detect", pipeline_version="1", input_key="uploads/a/in.mp4", params={},
        status=JobStatus.QUEUED, created_at_s=100.0, updated_at_s=100.0, expires_at_s=200.0, timeout_s=900.0,
        max_attempts=3,
    )
    base.update(kw)
    return Job(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("src", list(JobStatus))
@pytest.mark.parametrize("dst", list(JobStatus))
def test_transition_table(src: JobStatus, dst: JobStatus) -> None:
    legal = {
        (JobStatus.QUEUED, JobStatus.RUNNING), (JobStatus.QUEUED, JobStatus.CANCELLED),
        (JobStatus.QUEUED, JobStatus.EXPIRED), (JobStatus.QUEUED, JobStatus.FAILED),
        (JobStatus.RUNNING, JobStatus.QUEUED), (JobStatus.RUNNING, JobStatus.SUCCEEDED),
        (JobStatus.RUNNING, JobStatus.FAILED), (JobStatus.RUNNING, JobStatus.CANCELLED),
    }
    if (src, dst) in legal:
        check_transition(src, dst)
    else:
        with pytest.raises(InvalidTransition):
            check_transition(src, dst)


def test_terminal_states_lead_nowhere() -> None:
    assert {s for s in JobStatus if not TRANSITIONS[s]} == set(TERMINAL)
    assert all(s.terminal for s in TERMINAL) and not JobStatus.RUNNING.terminal


def test_record_never_shows_the_webhook_secret() -> None:
    job = make_job(webhook_url="https://example.com/hook", webhook_secret="whsec_c2VjcmV0c2VjcmV0c2VjcmV0")
    record = job_record(job, output_location="file:///o/", failure_location="file:///f")
    assert record["webhook"] == {"url": "https://example.com/hook"}
    assert "whsec_" not in repr(record)
    assert record["created_at"] == "1970-01-01T00:01:40.000Z"
    assert record["progress"]["percent"] is None


def test_claim_verdicts() -> None:
    from framequeue.jobs import claim_verdict

    queued = make_job()
    assert claim_verdict(queued, now_s=150.0).action == "claim"
    expired = claim_verdict(queued, now_s=200.0)
    assert (expired.action, expired.status) == ("end", JobStatus.EXPIRED) and expired.error is not None
    running = make_job(status=JobStatus.RUNNING, attempts=1, lease_deadline_s=300.0)
    assert claim_verdict(running, now_s=299.0).action == "leave"
    assert claim_verdict(running, now_s=300.0).action == "claim"  # its lease ran out: another worker may take it
    assert claim_verdict(make_job(cancel_requested=True), now_s=150.0).action == "leave"
    spent = claim_verdict(make_job(attempts=3), now_s=150.0)
    assert (spent.action, spent.status) == ("end", JobStatus.FAILED)
    assert spent.error is not None and spent.error.code == "attempts_exhausted"


def test_lease_expired_verdicts() -> None:
    from framequeue.jobs import lease_expired_verdict

    running = make_job(status=JobStatus.RUNNING, attempts=1, lease_deadline_s=300.0)
    assert lease_expired_verdict(running).action == "requeue"
    cancelled = lease_expired_verdict(make_job(status=JobStatus.RUNNING, attempts=1, cancel_requested=True))
    assert (cancelled.action, cancelled.status) == ("end", JobStatus.CANCELLED)
    spent = lease_expired_verdict(make_job(status=JobStatus.RUNNING, attempts=3))
    assert (spent.action, spent.status) == ("end", JobStatus.FAILED)
