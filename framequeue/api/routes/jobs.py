"""Job routes: parse, call the service, map the result."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from framequeue import live
from framequeue.api import prefer as prefer_header
from framequeue.api.auth import READ, SUBMIT, SUBMIT_LIMITED, Authenticator
from framequeue.api.deps import deliveries_of, service_of
from framequeue.api.openapi import AUTH, JSON_BODY, answers, json_body
from framequeue.api.problems import describe_invalid, validation_problem
from framequeue.api.schemas import BatchIn, BatchJobIn, JobIn
from framequeue.errors import FrameQueueError, InvalidRequest, PayloadTooLarge, RateLimited, UnsupportedContentType
from framequeue.jobs import Priority
from framequeue.records import BatchResults, DeliveryList, JobPage, JobRecord, PriorityName
from framequeue.service import MAX_BATCH, SubmitRequest
from framequeue.tenants.auth import Principal

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

MAX_IDEMPOTENCY_KEY_LEN = 255


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request's JSON body, refusing other content types (415) and bodies over max_bytes (413)."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json":
        raise UnsupportedContentType(f"send the job as application/json, not {ctype or 'no content type'}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the JSON body is over {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"the JSON body is over {max_bytes} bytes")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None


@router.post(
    "", status_code=202, response_model=None,
    responses=answers({202: (JobRecord, "queued (Location: the job; Idempotent-Replayed: true for a replay)"),
                       200: (JobRecord, "with Prefer: wait=N, the job ended within N seconds")},
                      *AUTH, *JSON_BODY, 422, 429, 503),
    openapi_extra=json_body(JobIn),
)
async def submit(
    request: Request,
    idempotency_key: str | None = Header(
        default=None, description="1..255 characters: a retried submit with the same key and body answers the "
        "first job (Idempotent-Replayed: true); with another body, 422 idempotency_key_reused"),
    prefer: str | None = Header(
        default=None, description="`wait=N` (whole seconds, at most 60): answer 200 with the finished job when it "
        "ends within N seconds"),
    caller: Principal = SUBMIT_LIMITED,
) -> JSONResponse:
    """Queue a job: 202 with its record. With `Prefer: wait=N` (N <= 60 s), 200 with the finished record when
    the job ends within N seconds, else the 202 (with `Preference-Applied: wait=N`)."""
    service = service_of(request)
    wait_s = prefer_header.wait_s(prefer)
    raw = await read_json(request, service.settings.max_json_bytes)
    try:
        body = JobIn.model_validate(raw)
    except ValidationError as exc:
        return validation_problem(exc.errors())
    if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LEN:
        raise InvalidRequest(f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY_LEN} characters")
    # a caller waiting on the answer is served first unless it named a lane
    req = _submit_request(body, idempotency_key, default_priority="high" if wait_s is not None else "normal")
    submitted = await run_in_threadpool(service.submit, req, caller)
    record = submitted.record
    headers = {"Location": f"/v1/jobs/{record['id']}"}
    if not submitted.created:
        headers["Idempotent-Replayed"] = "true"
    if wait_s is None:
        return JSONResponse(record, status_code=202, headers=headers)
    headers["Preference-Applied"] = f"wait={wait_s}"
    finished = await live.wait_for_end(service, record["id"], caller, wait_s)
    if finished is None:
        return JSONResponse(await run_in_threadpool(service.get, record["id"], caller), status_code=202,
                            headers=headers)
    return JSONResponse(finished, status_code=200, headers=headers)


@router.post(
    ":batch", status_code=200, response_model=None,
    responses=answers({200: (BatchResults, "one answer per job, in order: its record (status 202 queued, 200 an "
                                           "idempotent replay) or its error (4xx); the others are not affected")},
                      *AUTH, *JSON_BODY, 429, 503),
    openapi_extra=json_body(BatchIn, f"up to {MAX_BATCH} jobs, each with its own optional idempotency_key"),
)
async def submit_batch(request: Request, caller: Principal = SUBMIT_LIMITED) -> JSONResponse:
    """Queue up to 1,000 jobs in one call: the valid ones are written in one transaction and published in
    one broker call. Each job counts against the tenant's rate limit and quota as a single submit does; one
    past them is answered 429 in its place. Whole-request errors (auth, body, more than 1,000 jobs, the
    queue refusing the jobs) answer as any route does."""
    service = service_of(request)
    raw = await read_json(request, service.settings.max_json_bytes)
    if not isinstance(raw, dict) or not isinstance(raw.get("jobs"), list) or set(raw) != {"jobs"}:
        raise InvalidRequest('the body is {"jobs": [job, ...]}')
    items: list[Any] = raw["jobs"]
    if len(items) > MAX_BATCH:
        raise PayloadTooLarge(f"a batch holds at most {MAX_BATCH} jobs, not {len(items)}")
    answers_by_index: dict[int, dict[str, Any]] = {}
    reqs: list[tuple[int, SubmitRequest]] = []
    auth: Authenticator = request.app.state.auth
    limiter = auth.limiter
    for index, item in enumerate(items):
        try:
            body = BatchJobIn.model_validate(item)
        except ValidationError as exc:
            answers_by_index[index] = _error(index, InvalidRequest(describe_invalid(exc.errors())))
            continue
        # the request's own token (SUBMIT_LIMITED) pays for the first job; each other job takes one more
        wait_s = limiter.take(caller.tenant) if reqs else None
        if wait_s is not None:
            answers_by_index[index] = _error(index, RateLimited(
                f"this tenant is over its rate of {limiter.rate_per_s:g} jobs per second", retry_after_s=wait_s))
            continue
        reqs.append((index, _submit_request(body, body.idempotency_key)))
    outcomes = await run_in_threadpool(service.submit_many, [r for _, r in reqs], caller)
    for (index, _), outcome in zip(reqs, outcomes, strict=True):
        if isinstance(outcome, FrameQueueError):
            answers_by_index[index] = _error(index, outcome)
        else:
            answers_by_index[index] = {"index": index, "status": 202 if outcome.created else 200,
                                       "job": outcome.record}
    return JSONResponse({"results": [answers_by_index[i] for i in range(len(items))]})


def _error(index: int, exc: FrameQueueError) -> dict[str, Any]:
    return {"index": index, "status": exc.http_status, "error": exc.to_dict()}


def _submit_request(body: JobIn, idempotency_key: str | None,
                    default_priority: PriorityName = "normal") -> SubmitRequest:
    return SubmitRequest(
        pipeline=body.pipeline,
        input_key=body.input.key,
        params=body.params,
        webhook_url=None if body.webhook is None else body.webhook.url,
        webhook_secret=None if body.webhook is None else body.webhook.secret,
        ttl_s=body.ttl_s,
        timeout_s=body.timeout_s,
        retention_s=body.retention_s,
        attributes=body.attributes,
        idempotency_key=idempotency_key,
        priority=Priority(body.priority or default_priority),
    )


@router.get("", response_model=None, responses=answers({200: (JobPage, "a page of the tenant's jobs, newest first")},
                                                      *AUTH, 400, 422, 503))
async def list_jobs(
    request: Request,
    status: str | None = Query(default=None),
    limit: int = Query(default=50),
    after: str | None = Query(default=None),
    caller: Principal = READ,
) -> dict[str, Any]:
    return await run_in_threadpool(service_of(request).list_jobs, caller, status, limit, after)


@router.get("/{job_id}", response_model=None, responses=answers({200: (JobRecord, "the job")}, *AUTH, 404, 503))
async def get_job(request: Request, job_id: str, caller: Principal = READ) -> dict[str, Any]:
    return await run_in_threadpool(service_of(request).get, job_id, caller)


@router.post("/{job_id}/cancel", status_code=202, response_model=None,
             responses=answers({202: (JobRecord, "cancel requested (a running job stops at its next "
                                                          "frame); an ended job answers as it is")},
                               *AUTH, 404, 503))
async def cancel_job(request: Request, job_id: str, caller: Principal = SUBMIT) -> dict[str, Any]:
    return await run_in_threadpool(service_of(request).cancel, job_id, caller)


@router.get("/{job_id}/deliveries", response_model=None,
            responses=answers({200: (DeliveryList, "the job's webhook events")}, *AUTH, 404, 503))
async def deliveries(request: Request, job_id: str, caller: Principal = READ) -> dict[str, Any]:
    """The job's webhook events: state, attempts, last error, next attempt (never the secret)."""
    return await run_in_threadpool(deliveries_of(request).deliveries, job_id, caller)
