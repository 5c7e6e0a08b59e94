"""Async endpoints and their invocations (SageMaker Asynchronous Inference's model): create, read, list
and delete endpoints; invoke one with an input location (or a small inline body) and get back where the
answer or the failure document will appear. Used by the HTTP API (both its framequeue routes and its
SageMaker-compatible route) and the CLI; knows nothing of HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from framequeue.endpoints.async_endpoints import (
    Endpoint,
    check_custom_attributes,
    check_endpoint,
    check_inference_id,
    failure_uri,
    output_uri,
)
from framequeue.errors import InvalidKey, InvalidParams, PayloadTooLarge
from framequeue.notify.ssrf import check_url
from framequeue.pipelines.registry import get_pipeline
from framequeue.service import JobService, SubmitRequest
from framequeue.storage.base import check_key
from framequeue.tenants.auth import DEV_PRINCIPAL, Principal

#: SageMaker's limits: RequestTTLSeconds 60 s to 6 h (default 6 h), InvocationTimeoutSeconds 1 s to 1 h
#: (default 15 min), an inline Body up to 128,000 bytes
MIN_TTL_S = 60
MAX_TTL_S = 21600
MAX_INVOCATION_TIMEOUT_S = 3600
MAX_INLINE_BODY_BYTES = 128_000
_EXTENSION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./")


@dataclass(frozen=True)
class Invocation:
    inference_id: str
    output_location: str
    failure_location: str
    job: dict[str, Any]


@dataclass(frozen=True)
class InvokeRequest:
    endpoint: str
    input_location: str | None = None
    body: bytes | None = None
    inference_id: str | None = None
    ttl_s: int | None = None
    timeout_s: int | None = None
    custom_attributes: str | None = None
    content_type: str | None = None
    accept: str | None = None
    output_path_extension: str | None = None
    filename: str | None = None


class Invocations:
    def __init__(self, jobs: JobService, clock: Callable[[], float] = time.time) -> None:
        self._jobs = jobs
        self._store = jobs.store
        self._clock = clock

    # -- endpoints -------------------------------------------------------------------------------------

    def create_endpoint(self, ep: Endpoint, caller: Principal = DEV_PRINCIPAL) -> dict[str, Any]:
        check_endpoint(ep)
        ep = replace(ep, retention_s=self._jobs.retention_s(ep.retention_s, default=False))
        pipeline = get_pipeline(ep.pipeline)
        params = pipeline.validate(ep.params, self._jobs.models)
        for url in (ep.success_webhook, ep.error_webhook):
            if url is not None:
                check_url(url, allow_private=self._jobs.settings.webhook_allow_private)
        for path in (ep.output_path, ep.failure_path):
            if path is not None:  # reachable from this deployment's object store
                self._jobs.locations.resolve(path.rstrip("/") + "/probe")
        stored = self._store.create_endpoint(replace(ep, pipeline=pipeline.name, params=params,
                                                     created_at_s=self._clock(), tenant=caller.tenant))
        return stored.to_dict()

    def get_endpoint(self, name: str, caller: Principal = DEV_PRINCIPAL) -> dict[str, Any]:
        return self._store.get_endpoint(name, caller.tenant).to_dict()

    def list_endpoints(self, caller: Principal = DEV_PRINCIPAL) -> dict[str, Any]:
        return {"endpoints": [ep.to_dict() for ep in self._store.list_endpoints(caller.tenant)]}

    def delete_endpoint(self, name: str, caller: Principal = DEV_PRINCIPAL) -> None:
        self._store.delete_endpoint(name, caller.tenant)

    # -- invoking ---------------------------------------------------------------------------------------

    def invoke(self, req: InvokeRequest, caller: Principal = DEV_PRINCIPAL) -> Invocation:
        """Queue a job for the caller's tenant, through one of its own endpoints (another tenant's is not
        found). An InputLocation is any location this deployment's credentials reach (not confined to the
        tenant)."""
        ep = self._store.get_endpoint(req.endpoint, caller.tenant)
        if (req.input_location is None) == (req.body is None):
            raise InvalidParams("InputLocation and Body: provide exactly one of them")
        inference_id = check_inference_id(req.inference_id)
        attributes = {"inference_id": inference_id}
        custom = check_custom_attributes(req.custom_attributes)
        if custom:
            attributes["custom_attributes"] = custom
        for name, value in (("content_type", req.content_type), ("accept", req.accept)):
            if value:
                attributes[name] = value[:256]
        extension = _extension(req.output_path_extension)
        filename = _filename(req.filename) or _default_filename(inference_id)
        input_key = req.input_location if req.body is None else self._store_body(req.body, caller)
        assert input_key is not None
        submitted = self._jobs.submit(SubmitRequest(
            pipeline=ep.pipeline,
            input_key=input_key,
            params=ep.params,
            webhook_url=ep.success_webhook,
            webhook_secret=ep.webhook_secret,
            ttl_s=_seconds("RequestTTLSeconds", req.ttl_s, MIN_TTL_S, MAX_TTL_S),
            timeout_s=_seconds("InvocationTimeoutSeconds", req.timeout_s, 1, MAX_INVOCATION_TIMEOUT_S),
            attributes=attributes,
            endpoint=ep.name,
            output_uri=output_uri(ep, filename, extension),
            failure_uri=failure_uri(ep, filename, extension),
            error_webhook_url=ep.error_webhook,
            retention_s=ep.retention_s,
        ), caller)
        record = submitted.record
        return Invocation(inference_id, record["output_location"], record["failure_location"], record)

    def _store_body(self, body: bytes, caller: Principal) -> str:
        if len(body) > MAX_INLINE_BODY_BYTES:
            raise PayloadTooLarge(f"Body: at most {MAX_INLINE_BODY_BYTES} bytes inline; upload larger inputs "
                                  "and pass InputLocation")
        key = self._jobs.upload_key("body", caller)
        self._jobs.objects.put(key, body)
        return key


def _seconds(name: str, value: int | None, floor: int, ceiling: int) -> float | None:
    if value is None:
        return None
    if not floor <= value <= ceiling:
        raise InvalidParams(f"{name}: {floor}..{ceiling}")
    return float(value)


def _extension(value: str | None) -> str | None:
    if not value:
        return None
    if len(value) > 512 or not set(value) <= _EXTENSION_CHARS or ".." in value:
        raise InvalidParams("S3OutputPathExtension: letters, digits and -_./, at most 512 characters")
    return value.strip("/") or None


def _filename(value: str | None) -> str | None:
    if not value:
        return None
    if len(value) > 256 or "/" in value or not set(value) <= _EXTENSION_CHARS or value in (".", ".."):
        raise InvalidParams("Filename: letters, digits and -_., at most 256 characters")
    return value


def _default_filename(inference_id: str) -> str:
    """`<InferenceId>.out` when the id is a safe object name, else a fresh `<uuid>.out`."""
    try:
        check_key(inference_id)
    except InvalidKey:
        return f"{uuid.uuid4()}.out"
    return f"{inference_id}.out" if "/" not in inference_id else f"{uuid.uuid4()}.out"
