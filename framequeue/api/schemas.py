"""Request bodies of the HTTP API. Unknown fields are refused (400 naming them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from framequeue.notify.webhooks import SECRETS_PATTERN
from framequeue.records import PriorityName


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputIn(Strict):
    #: length and characters are checked by check_key (422 invalid_key), not here
    key: str = Field(min_length=1, max_length=8192)


class WebhookIn(Strict):
    url: str = Field(min_length=1, max_length=2048)
    #: a Standard Webhooks secret (whsec_…), or two separated by a space while rotating (both sign); the
    #: server's own is used when absent
    secret: str | None = Field(default=None, pattern=SECRETS_PATTERN)


class JobIn(Strict):
    pipeline: str = Field(min_length=1, max_length=64)
    input: InputIn
    params: dict[str, Any] = Field(default_factory=dict)
    webhook: WebhookIn | None = None
    ttl_s: float | None = None
    timeout_s: float | None = None
    #: seconds after the job ends when its files are deleted (framequeue.retention); the server's default
    retention_s: float | None = None
    #: the job's lane; absent: `normal`, or `high` for a request-reply submit (`Prefer: wait`)
    priority: PriorityName | None = None
    attributes: dict[str, str] = Field(default_factory=dict)


class BatchJobIn(JobIn):
    """One job of a batch submit: a job body and its own optional idempotency key (the single submit's
    Idempotency-Key header)."""

    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)


class BatchIn(Strict):
    """A batch submit's body. Each item is checked on its own: an invalid one is answered in its place."""

    jobs: list[BatchJobIn] = Field(min_length=1, max_length=1000)


class EndpointIn(Strict):
    name: str = Field(min_length=1, max_length=63)
    pipeline: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    output_path: str = Field(min_length=6, max_length=1024)
    failure_path: str | None = Field(default=None, min_length=6, max_length=1024)
    success_webhook: str | None = Field(default=None, min_length=1, max_length=2048)
    error_webhook: str | None = Field(default=None, min_length=1, max_length=2048)
    webhook_secret: str | None = Field(default=None, pattern=SECRETS_PATTERN)
    max_concurrent_invocations: int = 1
    retention_s: float | None = None


class ModelEndpointIn(Strict):
    model: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)
    #: `local`, http(s)://host:port or grpc://host:port of an Open Inference Protocol v2 server
    url: str = Field(min_length=1, max_length=2048)
    weight: float = Field(default=1.0, ge=0)


class ModelEndpointPatch(Strict):
    weight: float | None = Field(default=None, ge=0)
    state: Literal["active", "draining"] | None = None


class KeyIn(Strict):
    scope: str = Field(pattern=r"^(read|submit|admin)$")
    name: str = Field(default="", max_length=200)


class EnableIn(Strict):
    url: str = Field(min_length=1, max_length=2048)


#: the bodies routes read themselves (api.routes.jobs.read_json): the OpenAPI document declares them
REQUEST_MODELS: tuple[type[BaseModel], ...] = (JobIn, BatchIn, EndpointIn, ModelEndpointIn, ModelEndpointPatch, KeyIn,
                                               EnableIn)
