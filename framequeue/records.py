"""The records the HTTP API answers with, as pydantic models: what the OpenAPI document shows (framequeue.api's
routes name them) and what a typed client can parse. Pure pydantic, no FastAPI.

They describe the wire format; they do not produce it (framequeue.jobs.job_record, the services' to_dict's
do). Unknown fields are ignored on parsing, so a newer server's extra fields never break an older client.
Times named `*_at` are ISO 8601 UTC strings, `*_at_s` epoch seconds.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: framequeue.jobs.JobStatus's values (a test pins them)
JobStatusName = Literal["queued", "running", "succeeded", "failed", "cancelled", "expired"]
#: framequeue.jobs.Priority's values, highest lane first (a test pins them)
PriorityName = Literal["high", "normal", "low"]
#: framequeue.jobs.Outcome's values (a test pins them)
OutcomeName = Literal["succeeded", "failed", "timeout", "cancelled", "lease_lost", "handed_back", "split"]
#: framequeue.tenants.auth.Scope
ScopeName = Literal["read", "submit", "admin"]


class Record(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ErrorResponse(Record):
    """Every error (RFC 9457 application/problem+json); `code` is stable (framequeue.errors' table)."""

    type: str = Field(examples=["https://framequeue.dev/errors/job_not_found"])
    title: str = Field(examples=["job not found"])
    status: int = Field(examples=[404])
    code: str = Field(examples=["job_not_found"])
    detail: str = Field(examples=["no such job"])


class SageMakerError(Record):
    """An InvokeEndpointAsync error as botocore reads it (its kind also in the `x-amzn-ErrorType` header)."""

    type: Literal["ValidationError", "ServiceUnavailable", "InternalFailure"] = Field(alias="__type")
    message: str
    code: str


class ErrorInfo(Record):
    code: str
    message: str


class InputRef(Record):
    key: str


class UrlRef(Record):
    url: str


class Progress(Record):
    frames_done: int
    frames_total: int | None
    #: None until frames_total is known
    percent: float | None
    fps: float
    eta_s: float | None


class AttemptRecord(Record):
    """One claim of the job by a worker, and how it ended (`outcome` None while it runs)."""

    attempt: int
    worker: str
    started_at: str | None
    ended_at: str | None
    outcome: OutcomeName | None
    error: ErrorInfo | None


class JobEvent(Record):
    """Something the pipeline found over a span of the video; the other fields depend on `type`."""

    model_config = ConfigDict(extra="allow")

    type: str
    start_s: float
    end_s: float
    duration_s: float


class SegmentRecord(Record):
    """One segment job of a split parent, as the parent's record lists it."""

    id: str
    index: int
    status: JobStatusName
    attempts: int
    frames_done: int
    frames_total: int | None
    error: ErrorInfo | None


class JobRecord(Record):
    id: str
    pipeline: str
    pipeline_version: str
    #: the async endpoint the job was invoked through, if any
    endpoint: str | None
    status: JobStatusName
    input: InputRef
    params: dict[str, Any]
    progress: Progress
    attempts: int
    max_attempts: int
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    #: a queued job no worker started by then ends `expired`
    expires_at: str | None
    #: seconds after the job ends when its files are deleted; None: kept
    retention_s: float | None
    #: the lane the job waits in: a worker takes a waiting higher-priority job first
    priority: PriorityName = "normal"
    outputs_expired_at: str | None
    timeout_s: float
    cancel_requested: bool
    error: ErrorInfo | None
    output_location: str
    failure_location: str
    #: output name -> object key
    outputs: dict[str, str]
    #: output name -> where to download it (presigned on S3, else this API's /v1/jobs/{id}/outputs/{name})
    output_urls: dict[str, str]
    webhook: UrlRef | None
    error_webhook: UrlRef | None
    attributes: dict[str, str]
    attempt_history: list[AttemptRecord]
    events: list[JobEvent]
    #: the pipeline found more events than a record keeps; the first ones are kept
    events_truncated: bool
    #: seconds of video the succeeded run processed (frames decoded / the video's frame rate); None for a
    #: still, a pipeline without video, or a job that has not succeeded
    video_s: float | None
    #: every event the run found (also past the ones `events` keeps); None where the pipeline has no events
    events_total: int | None
    #: boxes over every inferred frame; None where the pipeline does not count them (only `detect` does)
    detections_total: int | None
    #: a segment job's parent and place (0-based); None for any other job. Segment jobs are not listed
    parent_id: str | None = None
    segment_index: int | None = None
    #: a split parent's segment count (None: not split) and how many succeeded; its `progress` sums theirs
    segments_total: int | None = None
    segments_done: int = 0
    #: a split parent's segments, by index (absent for any other job)
    segments: list[SegmentRecord] | None = None


class BatchItem(Record):
    """One job's answer in a batch submit, at its index in the request: `job` (status 202 queued, 200 an
    idempotent replay) or `error` (its 4xx status and code; the other jobs are not affected)."""

    index: int
    status: int = Field(examples=[202])
    job: JobRecord | None = None
    error: ErrorInfo | None = None


class BatchResults(Record):
    results: list[BatchItem]


class JobPage(Record):
    jobs: list[JobRecord]
    #: pass as `after` for the next page; None on the last page
    next_after: str | None


class Upload(Record):
    key: str
    size_bytes: int
    url: str


class Delivery(Record):
    id: str
    job_id: str
    type: str | None
    url: str
    state: Literal["pending", "delivered", "dead"]
    attempts: int
    delivered_at: str | None
    dead: bool
    last_error: str | None
    next_attempt_at: str | None


class DeliveryList(Record):
    deliveries: list[Delivery]


class DisabledWebhook(Record):
    url: str
    disabled_at: str | None
    event_id: str


class DisabledWebhookList(Record):
    disabled_webhooks: list[DisabledWebhook]


class WebhookEnabled(Record):
    url: str
    enabled: bool


class ApiKeyRecord(Record):
    id: str
    tenant: str
    name: str
    scope: ScopeName
    created_at_s: float
    revoked_at_s: float | None


class CreatedApiKey(ApiKeyRecord):
    #: the secret, shown once; send it as `Authorization: Bearer …` or `X-Api-Key: …`
    key: str


class ApiKeyList(Record):
    keys: list[ApiKeyRecord]


class EndpointRecord(Record):
    name: str
    pipeline: str
    params: dict[str, Any]
    output_path: str
    failure_path: str | None
    success_webhook: str | None
    error_webhook: str | None
    max_concurrent_invocations: int
    retention_s: float | None


class EndpointList(Record):
    endpoints: list[EndpointRecord]


class ModelEndpointRecord(Record):
    id: str
    model: str
    version: int
    url: str
    weight: float
    state: Literal["active", "draining"]
    created_at_s: float


class ModelEndpointList(Record):
    model_endpoints: list[ModelEndpointRecord]


class InvokeAccepted(Record):
    """InvokeEndpointAsync's answer (the output and failure locations are headers)."""

    InferenceId: str


class Status(Record):
    status: str


class PipelineList(Record):
    pipelines: list[str]


class ModelInfo(Record):
    name: str
    version: int
    format: str
    runtime: str
    precision: str
    input_size_hw: list[int]
    #: how many classes the model predicts
    classes: int
    created_at: str | None


class ModelList(Record):
    models: list[ModelInfo]


class QueueNumbers(Record):
    backlog_jobs: int
    ready_jobs: int
    delayed_jobs: int
    in_flight_jobs: int
    dead_letter_jobs: int
    oldest_waiting_age_s: float | None


class RunningJob(Record):
    id: str
    pipeline: str
    worker: str | None
    started_at: str | None
    progress: Progress


class LastHour(Record):
    bucket_s: float
    #: jobs that ended per bucket, oldest first
    succeeded: list[int]
    failed: list[int]


class AutoscalerDecisions(Record):
    #: the autoscaler's newest decisions, oldest first (time, t, waiting, in_flight, current, desired, live,
    #: draining, reason; a field the decision lacks is null)
    decisions: list[dict[str, Any]]


class QueueView(Record):
    at: str | None
    queue: QueueNumbers
    running: list[RunningJob]
    last_hour: LastHour
    #: None when `framequeue autoscale` does not run with this home
    autoscaler: AutoscalerDecisions | None
