"""The terminal-event rule, event ids and payloads (framequeue.notify.events), without a store."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from framequeue.jobs import Job, JobStatus
from framequeue.notify.events import (
    event_url,
    progress_event_id,
    progress_event_prefix,
    progress_row,
    render_event,
    superseded_error,
    terminal_event_id,
    terminal_rows,
)

OK, ERR, DOC = "https://hooks.example.com/ok", "https://hooks.example.com/err", "s3://out/failures/j1-error.out"


def _job(status: JobStatus = JobStatus.SUCCEEDED, **kw: object) -> Job:
    job = Job(
        id="j1", pipeline="detect", pipeline_version="1", input_key="uploads/a/in.mp4", params={}, status=status,
        created_at_s=100.0, updated_at_s=100.0, expires_at_s=200.0, timeout_s=900.0, max_attempts=3,
    )
    return replace(job, **kw)  # type: ignore[arg-type]


def _render(job: Job) -> bytes:
    return job.status.value.encode()


@pytest.mark.parametrize(
    ("status", "fields", "rows"),
    [
        (JobStatus.SUCCEEDED, {}, []),
        (JobStatus.SUCCEEDED, {"webhook_url": OK}, []),  # no secret: nothing to sign with
        (JobStatus.SUCCEEDED, {"webhook_url": OK, "webhook_secret": "whsec_x"}, [("evt_j1_succeeded", OK, True)]),
        (JobStatus.FAILED, {"webhook_url": OK, "webhook_secret": "whsec_x"}, [("evt_j1_failed", OK, True)]),
        (JobStatus.FAILED, {"webhook_url": OK, "error_webhook_url": ERR, "webhook_secret": "whsec_x"},
         [("evt_j1_failed", ERR, True)]),
        (JobStatus.SUCCEEDED, {"webhook_url": OK, "error_webhook_url": ERR, "webhook_secret": "whsec_x",
                               "failure_uri": DOC}, [("evt_j1_succeeded", OK, True)]),
        (JobStatus.EXPIRED, {"failure_uri": DOC}, [("doc_j1_expired", DOC, False)]),
        (JobStatus.CANCELLED, {"webhook_url": OK, "webhook_secret": "whsec_x", "failure_uri": DOC},
         [("evt_j1_cancelled", OK, True), ("doc_j1_cancelled", DOC, False)]),
    ],
)
def test_which_rows_a_terminal_state_writes(
    status: JobStatus, fields: dict[str, object], rows: list[tuple[str, str, bool]]
) -> None:
    written = terminal_rows(_job(status, **fields), _render)
    assert [(r.id, r.url, r.webhook) for r in written] == rows
    assert all(r.payload == status.value.encode() for r in written)
    assert all(r.secret == ("whsec_x" if r.webhook else "") for r in written)


def test_progress_rows_are_numbered_and_need_a_signed_webhook() -> None:
    running = _job(JobStatus.RUNNING, webhook_url=OK, webhook_secret="whsec_x", error_webhook_url=ERR)
    row = progress_row(running, 3, _render)
    assert row is not None and (row.id, row.url, row.webhook) == ("evt_j1_progress_3", OK, True)
    assert progress_row(_job(JobStatus.RUNNING, webhook_url=OK), 1, _render) is None
    assert progress_event_id("j1", 1).startswith(progress_event_prefix("j1"))
    assert terminal_event_id("j1", JobStatus.FAILED) == "evt_j1_failed"
    assert superseded_error(JobStatus.SUCCEEDED) == "superseded by job.succeeded"


def test_event_url_prefers_the_error_hook_only_for_an_unsuccessful_end() -> None:
    assert event_url(_job(JobStatus.SUCCEEDED, webhook_url=OK, error_webhook_url=ERR)) == OK
    assert event_url(_job(JobStatus.EXPIRED, webhook_url=OK, error_webhook_url=ERR)) == ERR
    assert event_url(_job(JobStatus.FAILED, webhook_url=OK)) == OK


def test_the_payload_names_the_event_and_carries_the_record() -> None:
    body = json.loads(render_event(_job(JobStatus.RUNNING), output_location="o", failure_location="f", now_s=0.0))
    assert body["type"] == "job.progress" and body["timestamp"] == "1970-01-01T00:00:00.000Z"
    assert body["data"]["id"] == "j1" and body["data"]["output_location"] == "o"
    done = json.loads(render_event(_job(), output_location="o", failure_location="f", now_s=0.0))
    assert done["type"] == "job.succeeded" and "webhook_secret" not in done["data"]
