"""Async endpoints: a name that stands for a pipeline with its parameters and where its results go, as a
SageMaker Asynchronous Inference endpoint does (its AsyncInferenceConfig: S3OutputPath, S3FailurePath,
the success and error notifications, MaxConcurrentInvocationsPerInstance). Pure: no I/O."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from framequeue.errors import InvalidParams

#: SageMaker's EndpointName pattern and length
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
#: SageMaker's InferenceId: 1..64 visible ASCII characters
_INFERENCE_ID = re.compile(r"^[\x21-\x7e]{1,64}$")
#: SageMaker's CustomAttributes: up to 1024 visible ASCII characters (spaces and tabs inside)
_CUSTOM_ATTRIBUTES = re.compile(r"^[\x20-\x7e\t]{0,1024}$")
MAX_CONCURRENT_INVOCATIONS = 1000


@dataclass(frozen=True)
class Endpoint:
    name: str
    pipeline: str
    #: S3 URI prefixes (s3://bucket/prefix) of the output and failure documents
    output_path: str
    failure_path: str | None = None
    #: the pipeline's parameters for every invocation
    params: dict[str, Any] = field(default_factory=dict)
    #: webhooks for the job.succeeded event and for job.failed / job.expired / job.cancelled
    success_webhook: str | None = None
    error_webhook: str | None = None
    #: signs this endpoint's webhook events; the server's secret when None. Never shown by the API.
    webhook_secret: str | None = None
    #: how many of this endpoint's invocations one worker process runs at a time
    max_concurrent_invocations: int = 1
    created_at_s: float = 0.0
    #: the tenant that owns it: only that tenant sees, manages and invokes it
    tenant: str = "default"
    #: retention_s of its invocations' jobs (framequeue.retention); None: the deployment's FQ_RETENTION_S
    retention_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pipeline": self.pipeline,
            "params": dict(self.params),
            "output_path": self.output_path,
            "failure_path": self.failure_path,
            "success_webhook": self.success_webhook,
            "error_webhook": self.error_webhook,
            "max_concurrent_invocations": self.max_concurrent_invocations,
            "retention_s": self.retention_s,
        }


def check_endpoint(ep: Endpoint) -> Endpoint:
    """Refuse what SageMaker's CreateEndpoint would, with the field named."""
    if not _NAME.match(ep.name):
        raise InvalidParams("name: 1..63 letters, digits and hyphens, starting and ending with a letter or digit")
    for name, value in (("output_path", ep.output_path), ("failure_path", ep.failure_path)):
        if value is not None and not value.startswith("s3://"):
            raise InvalidParams(f"{name}: an S3 URI, s3://bucket/prefix")
        if value is not None and len(value.rstrip("/")) <= len("s3://"):
            raise InvalidParams(f"{name}: names no bucket")
    if not 1 <= ep.max_concurrent_invocations <= MAX_CONCURRENT_INVOCATIONS:
        raise InvalidParams(f"max_concurrent_invocations: 1..{MAX_CONCURRENT_INVOCATIONS}")
    return ep


def check_inference_id(inference_id: str | None) -> str:
    """The caller's InferenceId, or a fresh one (as SageMaker generates one)."""
    if inference_id is None or inference_id == "":
        return str(uuid.uuid4())
    if not _INFERENCE_ID.match(inference_id):
        raise InvalidParams("InferenceId: 1..64 visible ASCII characters")
    return inference_id


def check_custom_attributes(value: str | None) -> str | None:
    if value is not None and not _CUSTOM_ATTRIBUTES.match(value):
        raise InvalidParams("CustomAttributes: at most 1024 visible US-ASCII characters")
    return value


def output_uri(ep: Endpoint, filename: str, extension: str | None = None) -> str:
    """`<output_path>[/<extension>]/<filename>` (SageMaker's default filename is `<id>.out`)."""
    return "/".join(p.strip("/") for p in (ep.output_path, extension, filename) if p)


def failure_uri(ep: Endpoint, filename: str, extension: str | None = None) -> str:
    """`<failure_path>[/<extension>]/<stem>-error.out`; without a failure path, next to the outputs."""
    base = ep.failure_path or ep.output_path
    return "/".join(p.strip("/") for p in (base, extension, f"{filename.removesuffix('.out')}-error.out") if p)
