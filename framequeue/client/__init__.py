"""The Python client of the framequeue HTTP API: `Client` (blocking) and `AsyncClient` (asyncio), one surface.

    from framequeue.client import Client

    with Client("http://127.0.0.1:8080", api_key="fq_…") as fq:
        key = fq.upload(Path("clip.mp4"))["key"]
        job = fq.submit({"pipeline": "detect", "input": {"key": key}}, idempotency_key="clip-1")
        job = fq.wait(job["id"])
        if job["status"] == "succeeded":
            fq.download(job["id"], "video", Path("out"))  # out/annotated.mp4

Records are plain dicts typed as TypedDicts (records.py); calls are described once (calls.py) and sent by
either client, retried on connection errors and 429/503 as the RetryPolicy says (retry.py). It needs httpx
and httpx-sse only, none of the server's dependencies."""

from __future__ import annotations

from framequeue.client.aio import AsyncClient
from framequeue.client.records import (
    TERMINAL,
    BatchItem,
    ErrorInfo,
    JobPage,
    JobRecord,
    JobStatus,
    ModelEndpoint,
    Progress,
    Record,
    Upload,
)
from framequeue.client.retry import NO_RETRY, RetryPolicy, parse_retry_after
from framequeue.client.sync import Client

__all__ = [
    "NO_RETRY",
    "TERMINAL",
    "AsyncClient",
    "BatchItem",
    "Client",
    "ErrorInfo",
    "JobPage",
    "JobRecord",
    "JobStatus",
    "ModelEndpoint",
    "Progress",
    "Record",
    "RetryPolicy",
    "Upload",
    "parse_retry_after",
]
