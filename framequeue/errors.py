"""One error tree for framequeue; every adapter translates its library's exceptions into it.

    FrameQueueError
    ├── InvalidRequest                 400  invalid_request
    │   ├── UnknownPipeline            422  unknown_pipeline
    │   ├── UnknownModel               422  unknown_model
    │   ├── InvalidParams              422  invalid_params
    │   │   └── WebhookDisabled        422  webhook_disabled
    │   ├── IdempotencyConflict        422  idempotency_key_reused
    │   ├── InputNotFound              422  input_not_found
    │   └── InvalidKey                 422  invalid_key
    ├── Unauthorized                   401  unauthorized
    ├── Forbidden                      403  forbidden
    ├── TooManyRequests                429  too_many_requests
    │   ├── RateLimited                429  rate_limited
    │   └── QuotaExceeded              429  quota_exceeded
    ├── PayloadTooLarge                413  payload_too_large
    ├── UnsupportedContentType         415  unsupported_content_type
    ├── RangeNotSatisfiable            416  range_not_satisfiable
    ├── NotFound                       404  not_found
    │   ├── JobNotFound                404  job_not_found
    │   ├── EndpointNotFound           404  endpoint_not_found
    │   ├── ModelEndpointNotFound      404  model_endpoint_not_found
    │   ├── ApiKeyNotFound             404  api_key_not_found
    │   └── DeliveryNotFound           404  delivery_not_found
    ├── InvalidTransition              409  invalid_transition
    ├── EndpointExists                 409  endpoint_exists
    ├── ModelEndpointExists            409  model_endpoint_exists
    ├── LeaseLost                      409  lease_lost
    ├── ObjectExists                   409  object_exists
    ├── StorageError                   502  storage_error
    │   └── PresignUnsupported         501  presign_unsupported
    ├── ServiceUnavailable             503  service_unavailable
    │   └── NoEndpoint                 503  no_endpoint
    ├── MediaError (ValueError)        422  media_error
    │   ├── UnsupportedMedia           422  unsupported_media
    │   ├── CorruptMedia               422  corrupt_media
    │   └── MediaLimitsExceeded        422  media_limits_exceeded
    ├── JobTimeout                     504  timeout
    ├── JobCancelled                   409  cancelled
    ├── JobExpired                     410  expired
    ├── AttemptsExhausted              500  attempts_exhausted
    ├── SegmentFailed                  500  segment_failed
    ├── WorkerCrashed                  500  worker_crashed
    └── ResourceExhausted              500  resource_exhausted

`code` is stable and part of the API; `retryable` says whether running the job again could help.
"""

from __future__ import annotations

from typing import ClassVar


class FrameQueueError(Exception):
    """Base of every error framequeue raises on purpose."""

    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500
    #: whether another attempt of the same job could succeed
    retryable: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class InvalidRequest(FrameQueueError):
    code = "invalid_request"
    http_status = 400


class UnknownPipeline(InvalidRequest):
    code = "unknown_pipeline"
    http_status = 422


class UnknownModel(InvalidRequest):
    code = "unknown_model"
    http_status = 422


class InvalidParams(InvalidRequest):
    code = "invalid_params"
    http_status = 422


class IdempotencyConflict(InvalidRequest):
    code = "idempotency_key_reused"
    http_status = 422


class InputNotFound(InvalidRequest):
    code = "input_not_found"
    http_status = 422


class WebhookDisabled(InvalidParams):
    """The webhook URL answered 410 Gone; it stays disabled for the tenant until an admin enables it."""

    code = "webhook_disabled"


class InvalidKey(InvalidRequest):
    """An object key that could escape the store's root or is otherwise unusable."""

    code = "invalid_key"
    http_status = 422


class Unauthorized(FrameQueueError):
    """No usable API key: missing, malformed, unknown or revoked all answer alike (nothing to probe)."""

    code = "unauthorized"
    http_status = 401


class Forbidden(FrameQueueError):
    """The key is valid but its scope does not allow this call."""

    code = "forbidden"
    http_status = 403


class TooManyRequests(FrameQueueError):
    code = "too_many_requests"
    http_status = 429
    retryable = True

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        #: seconds the caller should wait before trying again (the Retry-After header)
        self.retry_after_s = retry_after_s


class RateLimited(TooManyRequests):
    code = "rate_limited"


class QuotaExceeded(TooManyRequests):
    code = "quota_exceeded"


class PayloadTooLarge(FrameQueueError):
    code = "payload_too_large"
    http_status = 413


class UnsupportedContentType(FrameQueueError):
    code = "unsupported_content_type"
    http_status = 415


class RangeNotSatisfiable(FrameQueueError):
    """A download's Range header that selects no byte of the object (answered with `Content-Range: bytes */N`)."""

    code = "range_not_satisfiable"
    http_status = 416


class NotFound(FrameQueueError):
    code = "not_found"
    http_status = 404


class JobNotFound(NotFound):
    code = "job_not_found"


class EndpointNotFound(NotFound):
    code = "endpoint_not_found"


class EndpointExists(FrameQueueError):
    code = "endpoint_exists"
    http_status = 409


class ModelEndpointNotFound(NotFound):
    code = "model_endpoint_not_found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"


class ModelEndpointExists(FrameQueueError):
    code = "model_endpoint_exists"
    http_status = 409


class InvalidTransition(FrameQueueError):
    code = "invalid_transition"
    http_status = 409


class LeaseLost(FrameQueueError):
    """The worker's fencing token no longer holds: another worker owns the job, or it ended."""

    code = "lease_lost"
    http_status = 409


class ObjectExists(FrameQueueError):
    """A commit-once write (`create_only`) found the object already there: the first writer's data stays."""

    code = "object_exists"
    http_status = 409


class StorageError(FrameQueueError):
    """The object store refused a request for good: credentials, permissions, a missing bucket, a bad
    configuration. An unreachable or overloaded store is ServiceUnavailable instead (retryable)."""

    code = "storage_error"
    http_status = 502


class PresignUnsupported(StorageError):
    """This object store cannot sign URLs (file://, memory://): stream the object through the service."""

    code = "presign_unsupported"
    http_status = 501


class ServiceUnavailable(FrameQueueError):
    code = "service_unavailable"
    http_status = 503
    retryable = True


class NoEndpoint(ServiceUnavailable):
    """No registered inference endpoint can take the job now: none active with weight > 0, or none of the
    job's model version answers its health check. Retryable: an endpoint may come back."""

    code = "no_endpoint"


class MediaError(FrameQueueError, ValueError):
    code = "media_error"
    http_status = 422


class UnsupportedMedia(MediaError):
    code = "unsupported_media"


class CorruptMedia(MediaError):
    code = "corrupt_media"


class MediaLimitsExceeded(MediaError):
    code = "media_limits_exceeded"


class JobTimeout(FrameQueueError):
    code = "timeout"
    http_status = 504


class JobCancelled(FrameQueueError):
    code = "cancelled"
    http_status = 409


class JobExpired(FrameQueueError):
    """No worker started the job within its queue TTL."""

    code = "expired"
    http_status = 410


class AttemptsExhausted(FrameQueueError):
    """A retryable error ended the job's last attempt; the message names the last error."""

    code = "attempts_exhausted"


class SegmentFailed(FrameQueueError):
    """A segment job of a split long video ended without success (its attempts exhausted, or it was
    cancelled or expired): its parent fails with this error, naming the segment and its error."""

    code = "segment_failed"


class WorkerCrashed(FrameQueueError):
    """The media child died without an answer (signal, out of memory): another attempt may succeed."""

    code = "worker_crashed"
    retryable = True


class ResourceExhausted(FrameQueueError):
    """The job needed more than the worker gives one job: the media process's memory cap, its CPU-time
    budget, or the scratch disk. Not retryable: the same job needs the same again."""

    code = "resource_exhausted"


#: code -> class, for errors that cross a process boundary as {code, message}
BY_CODE: dict[str, type[FrameQueueError]] = {}


def _index(cls: type[FrameQueueError]) -> None:
    BY_CODE.setdefault(cls.code, cls)
    for sub in cls.__subclasses__():
        _index(sub)


_index(FrameQueueError)


def from_code(code: str, message: str) -> FrameQueueError:
    """Rebuild an error sent as {code, message} (from the media child or the job record)."""
    return BY_CODE.get(code, FrameQueueError)(message)
