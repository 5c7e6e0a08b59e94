"""The records the API answers, as TypedDicts: typed for a checker, plain dicts at run time (so
`record["status"]` and `json.dumps(record)` keep working). They mirror the server's JSON; a field the server
adds later is simply there at run time before it is declared here."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "expired"]
#: a job in one of these states never changes again
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled", "expired"})


class Progress(TypedDict):
    frames_done: int
    frames_total: int | None
    #: 0..100, None while frames_total is unknown
    percent: float | None
    fps: float
    eta_s: float | None


class ErrorInfo(TypedDict):
    #: a stable code of framequeue's error tree (framequeue.errors)
    code: str
    message: str


class InputRef(TypedDict):
    key: str


class SegmentState(TypedDict):
    """One segment job of a split parent, as the parent's record lists it."""

    id: str
    index: int
    status: JobStatus
    attempts: int
    frames_done: int
    frames_total: int | None
    error: ErrorInfo | None


class JobRecord(TypedDict):
    """A job as GET /v1/jobs/{id} answers it; times are ISO 8601 UTC strings."""

    id: str
    pipeline: str
    pipeline_version: str
    endpoint: str | None
    status: JobStatus
    input: InputRef
    params: dict[str, Any]
    progress: Progress
    attempts: int
    max_attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    expires_at: str | None
    retention_s: float | None
    outputs_expired_at: str | None
    timeout_s: float | None
    cancel_requested: bool
    error: ErrorInfo | None
    output_location: str
    failure_location: str
    #: output name -> object key
    outputs: dict[str, str]
    webhook: dict[str, Any] | None
    error_webhook: dict[str, Any] | None
    attributes: dict[str, str]
    attempt_history: list[dict[str, Any]]
    events: list[dict[str, Any]]
    events_truncated: bool
    #: what a successful run amounted to (None when unknown; absent from servers before issue 14): seconds of
    #: video processed, events found, boxes over all inferred frames (detect)
    video_s: NotRequired[float | None]
    events_total: NotRequired[int | None]
    detections_total: NotRequired[int | None]
    #: high, normal or low (servers before lanes omit it)
    priority: NotRequired[Literal["high", "normal", "low"]]
    #: a long video split into segment jobs (servers before issue 17 omit these): a segment's parent and
    #: place; a parent's segment count, successes, and each segment's state (its progress sums theirs)
    parent_id: NotRequired[str | None]
    segment_index: NotRequired[int | None]
    segments_total: NotRequired[int | None]
    segments_done: NotRequired[int]
    segments: NotRequired[list[SegmentState]]


class JobPage(TypedDict):
    """GET /v1/jobs: newest first; pass next_after as `after` for the next page (None: the last page)."""

    jobs: list[JobRecord]
    next_after: str | None


class BatchItem(TypedDict):
    """One job's answer in POST /v1/jobs:batch, at its index: `job` with status 202 (queued) or 200 (an
    idempotent replay), or `error` ({code, message}) with its 4xx status."""

    index: int
    status: int
    job: NotRequired[JobRecord]
    error: NotRequired[dict[str, str]]


class Upload(TypedDict):
    """POST /v1/uploads: the key to name as a job's input."""

    key: str
    size_bytes: int
    url: str


class ModelEndpoint(TypedDict):
    id: str
    model: str
    version: int
    #: http(s)://host:port, grpc://host:port or `local`
    url: str
    weight: float
    #: active or draining
    state: str
    created_at_s: float


#: records whose fields the client does not pin (endpoints, deliveries, disabled webhooks)
Record = dict[str, Any]
