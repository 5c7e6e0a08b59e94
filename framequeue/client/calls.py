"""The API's calls, described once for the sync and the async client: method, path, query, body, whether the
call may be sent again, and which field of the answer is the result. The clients only send them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import httpx

from framequeue.client.records import BatchItem
from framequeue.client.retry import RETRY_STATUSES
from framequeue.errors import FrameQueueError, InvalidParams, TooManyRequests, from_code


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: safe to send again after a connection error or a 429/503: doing it twice is doing it once
    idempotent: bool = False
    #: the answer's field that holds the result (None: the whole body)
    unwrap: str | None = None

    def retryable(self, status: int | None) -> bool:
        """Whether a failure (status None: the connection failed) of this call is worth another try."""
        return self.idempotent and (status is None or status in RETRY_STATUSES)

    def result(self, resp: httpx.Response) -> Any:
        """The call's result out of a successful answer."""
        body = resp.json() if resp.content else None
        return body[self.unwrap] if self.unwrap is not None and body is not None else body


def upload_params(filename: str) -> dict[str, Any]:
    return {"filename": filename}


def submit(body: dict[str, Any], idempotency_key: str | None) -> Call:
    # with a key the server answers a repeat with the first job (Idempotent-Replayed), so a retry is safe
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return Call("POST", "/v1/jobs", json=body, headers=headers, idempotent=idempotency_key is not None)


#: jobs per POST /v1/jobs:batch (the server's limit); submit_many sends longer lists in several
MAX_BATCH = 1000


def submit_many(bodies: Sequence[dict[str, Any]], idempotency_keys: Sequence[str | None] | None) -> list[Call]:
    """The batch submits of `bodies` (MAX_BATCH jobs each); with keys, keys[i] is bodies[i]'s (None: none).
    A batch is sent again after a failure only when every one of its jobs has a key."""
    keys = list(idempotency_keys) if idempotency_keys is not None else [None] * len(bodies)
    if len(keys) != len(bodies):
        raise InvalidParams(f"{len(bodies)} jobs and {len(keys)} idempotency keys: give one per job (None: none)")
    out = []
    for start in range(0, len(bodies), MAX_BATCH):
        items = [
            {**body, "idempotency_key": key} if key else body
            for body, key in zip(bodies[start:start + MAX_BATCH], keys[start:start + MAX_BATCH], strict=True)
        ]
        repeatable = all(keys[start:start + MAX_BATCH])
        out.append(Call("POST", "/v1/jobs:batch", json={"jobs": items}, idempotent=repeatable, unwrap="results"))
    return out


def renumber(results: Sequence[list[BatchItem]]) -> list[BatchItem]:
    """The answers of submit_many's calls as one list, each `index` counted over all the jobs."""
    out: list[BatchItem] = []
    for chunk in results:
        base = len(out)
        out.extend(cast(BatchItem, {**item, "index": base + item["index"]}) for item in chunk)
    return out


def job(job_id: str) -> Call:
    return Call("GET", f"/v1/jobs/{job_id}", idempotent=True)


def jobs(status: str | None, limit: int, after: str | None) -> Call:
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["status"] = status
    if after:
        params["after"] = after
    return Call("GET", "/v1/jobs", params=params, idempotent=True)


def cancel(job_id: str) -> Call:
    return Call("POST", f"/v1/jobs/{job_id}/cancel")


def queue() -> Call:
    return Call("GET", "/v1/queue", idempotent=True)


def create_endpoint(body: dict[str, Any]) -> Call:
    return Call("POST", "/v1/endpoints", json=body)


def endpoints() -> Call:
    return Call("GET", "/v1/endpoints", idempotent=True)


def delete_endpoint(name: str) -> Call:
    return Call("DELETE", f"/v1/endpoints/{name}", idempotent=True)


def register_model_endpoint(model: str, version: int, url: str, weight: float) -> Call:
    body = {"model": model, "version": version, "url": url, "weight": weight}
    return Call("POST", "/v1/model-endpoints", json=body)


def model_endpoints(model: str | None) -> Call:
    params = {"model": model} if model else {}
    return Call("GET", "/v1/model-endpoints", params=params, idempotent=True, unwrap="model_endpoints")


def update_model_endpoint(endpoint_id: str, weight: float | None, state: str | None) -> Call:
    body = {k: v for k, v in (("weight", weight), ("state", state)) if v is not None}
    # it sets absolute values: sending it twice leaves what sending it once does
    return Call("PATCH", f"/v1/model-endpoints/{endpoint_id}", json=body, idempotent=True)


def remove_model_endpoint(endpoint_id: str) -> Call:
    return Call("DELETE", f"/v1/model-endpoints/{endpoint_id}", idempotent=True)


def deliveries(job_id: str) -> Call:
    return Call("GET", f"/v1/jobs/{job_id}/deliveries", idempotent=True, unwrap="deliveries")


def replay(event_id: str) -> Call:
    return Call("POST", f"/v1/deliveries/{event_id}/replay")


def disabled_webhooks() -> Call:
    return Call("GET", "/v1/webhooks/disabled", idempotent=True, unwrap="disabled_webhooks")


def enable_webhook(url: str) -> Call:
    return Call("POST", "/v1/webhooks/enable", json={"url": url}, idempotent=True)


def events_path(job_id: str) -> str:
    return f"/v1/jobs/{job_id}/events"


def output_path(job_id: str, name: str) -> str:
    return f"/v1/jobs/{job_id}/outputs/{name}"


def problem(resp: httpx.Response, retry_after_s: float | None = None) -> FrameQueueError:
    """The framequeue error of a problem answer (its code from the error tree); a 429 carries the server's
    Retry-After. The body must have been read."""
    try:
        body = resp.json()
    except ValueError:
        return FrameQueueError(f"HTTP {resp.status_code}: {resp.text[:200]}")
    if not isinstance(body, dict):
        return FrameQueueError(f"HTTP {resp.status_code}: {resp.text[:200]}")
    exc = from_code(body.get("code", "internal_error"), body.get("detail", resp.text))
    if isinstance(exc, TooManyRequests) and retry_after_s is not None:
        exc.retry_after_s = retry_after_s
    return exc


def filename_of(resp: httpx.Response, default: str) -> str:
    """The file name an output download names in its Content-Disposition."""
    disposition = resp.headers.get("content-disposition", "")
    return disposition.split("filename=", 1)[-1].strip('"') or default
