"""A job's outputs, streamed from the object store with HTTP Range support (api/ranges.py), so a browser's
video player can seek in an annotated video without downloading it first; a strong ETag lets a client
revalidate (If-None-Match: 304) and resume (If-Range)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from framequeue.api.auth import READ
from framequeue.api.deps import service_of
from framequeue.api.openapi import AUTH, answers
from framequeue.api.problems import problem
from framequeue.api.ranges import byte_range
from framequeue.errors import NotFound, RangeNotSatisfiable
from framequeue.storage.base import ObjectStore, content_type
from framequeue.tenants.auth import Principal

router = APIRouter(prefix="/v1/jobs", tags=["outputs"])
PATH = "/{job_id}/outputs/{name}"


def output_path(job_id: str, name: str) -> str:
    """The API path of one output (the route below): what a job record's `output_urls` name off S3."""
    return router.prefix + PATH.format(job_id=job_id, name=name)

#: pieces an output streams in: the store reads (S3: one ranged GET) in pieces, so memory stays flat
CHUNK_BYTES = 256 * 1024


def etag(key: str, size: int) -> str:
    """A strong validator: an output's key names one attempt's file, written once, so key and size identify it."""
    return f'"{hashlib.sha256(key.encode()).hexdigest()[:32]}-{size}"'


def _matches(if_none_match: str, current: str) -> bool:
    """If-None-Match: `*` or a list of entity tags (weak ones compare by their opaque part, RFC 9110 §13.1.2)."""
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or current in tags


def _chunks(objects: ObjectStore, key: str, start: int, end: int | None) -> Iterator[bytes]:
    with objects.open_read(key, start=start, end=end) as fh:
        while chunk := fh.read(CHUNK_BYTES):
            yield chunk


@router.get(PATH, response_model=None, response_class=StreamingResponse, responses=answers(
    {200: (None, "the whole output (its media type: video/mp4, application/json, …)"),
     206: (None, "the byte range asked for (Content-Range)"),
     304: (None, "If-None-Match matched: the client's copy is current")},
    *AUTH, 404, 416, 503, media_type="application/octet-stream"))
async def get_output(
    request: Request,
    job_id: str,
    name: str,
    range_header: str | None = Header(default=None, alias="range"),
    if_range: str | None = Header(default=None),
    if_none_match: str | None = Header(default=None),
    caller: Principal = READ,
) -> Response:
    service = service_of(request)
    key = await run_in_threadpool(service.output_key, job_id, name, caller)
    size = await run_in_threadpool(service.objects.size, key)
    if size is None:
        raise NotFound(f"job {job_id}'s output {name!r} is no longer in the object store")
    filename = key.rsplit("/", 1)[-1]
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag(key, size),
        "Content-Disposition": f'inline; filename="{filename}"',
        "Cache-Control": "private, no-cache",
    }
    if if_none_match is not None and _matches(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)  # the client's copy is current
    try:
        span = byte_range(range_header, size, if_range=if_range, etag=headers["ETag"])
    except RangeNotSatisfiable as exc:
        return problem(416, exc.code, exc.message, {**headers, "Content-Range": f"bytes */{size}"})
    start, end = span or (0, size)
    headers["Content-Length"] = str(end - start)
    status = 200
    if span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return StreamingResponse(_chunks(service.objects, key, start, end), status_code=status,
                             media_type=content_type(key), headers=headers)
