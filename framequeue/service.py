"""JobService: submit, read, list, cancel and reap jobs. Used by the HTTP API and the CLI alike; knows
nothing of HTTP. The model-endpoint registry (endpoints.registry) and webhook administration
(notify.deliveries) are services of their own."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

from framequeue.brokers.base import Broker, Message
from framequeue.brokers.in_tx import InTxQueue
from framequeue.config import Settings, crashpoint
from framequeue.endpoints.routing import VersionBalancer
from framequeue.errors import (
    FrameQueueError,
    IdempotencyConflict,
    InvalidParams,
    JobNotFound,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    ServiceUnavailable,
)
from framequeue.jobs import (
    Job,
    JobStatus,
    Priority,
    failure_key,
    job_record,
    output_prefix,
    segments_prefix,
    split_view,
)
from framequeue.jobstore import JobStore
from framequeue.jobstore.ports import TxJobStore
from framequeue.models.repository import ModelRepository
from framequeue.notify.deliveries import check_not_disabled
from framequeue.notify.ssrf import check_url
from framequeue.pipelines.base import Pipeline
from framequeue.pipelines.registry import get_pipeline
from framequeue.storage.base import ObjectStore, check_key, download_url
from framequeue.storage.locations import Locations
from framequeue.tenants.auth import Principal
from framequeue.tenants.uploads import input_not_found, upload_key, upload_prefix

log = logging.getLogger("framequeue.service")

MAX_TTL_S = 7 * 24 * 3600.0
MAX_ATTRIBUTES = 32
#: jobs republished or dead letters handled per reaper pass
REAP_BATCH = 100
#: life of a presigned output URL in a job record: long enough to watch a long video and seek in it
OUTPUT_URL_EXPIRES_S = 3600
#: Retry-After of a submit refused by the queued-job quota: jobs must start or end first
QUOTA_RETRY_AFTER_S = 10.0
#: jobs one batch submit may hold
MAX_BATCH = 1000

@dataclass(frozen=True)
class SharedDatabase:
    """A job store and a queue in one SQL database (SQLite; PostgreSQL with its own queue): a submit commits
    a job's row and its message together, and a worker a job's terminal state and the ack of its message."""

    store: TxJobStore
    queue: InTxQueue

    @classmethod
    def of(cls, store: object, broker: object) -> SharedDatabase | None:
        if isinstance(store, TxJobStore) and isinstance(broker, InTxQueue) and store.database == broker.database:
            return cls(store, broker)
        return None

    def create_published(self, jobs: Sequence[tuple[Job, str | None]]) -> list[tuple[Job, bool] | IdempotencyConflict]:
        """The rows and the messages of the jobs created, in one transaction."""
        def enqueue(conn: Any, created: list[Job]) -> None:
            self.queue.publish_in(conn, [job.id for job in created], [job.priority for job in created])

        return self.store.create_many(jobs, enqueue=enqueue)

    def acking(self, message: Message) -> Callable[[Any], None]:
        """A `then` for TxJobStore.finish: the message's ack, in the terminal state's transaction."""
        return lambda conn: self.queue.ack_in(conn, message)


class PublishedMarks:
    """mark_published writes coalesced across concurrent submits (group commit, no thread of its own): while
    one write is under way, the submits that come meanwhile wait for it, and the first of them then writes
    all their ids in one UPDATE. Each `add` returns once a write carried its ids (as an uncoalesced mark
    would), after at most the write under way and its own. A write that fails is logged: those rows are
    published once more by the reaper after republish_after_s, a duplicate its claim turns away."""

    def __init__(self, store: JobStore, clock: Callable[[], float]) -> None:
        self._store, self._clock = store, clock
        self._cond = threading.Condition()
        self._waiting: list[str] = []
        self._writing = False
        #: writes started and finished so far (one at a time, so they finish in the order they start)
        self._started = self._finished = 0

    def add(self, job_ids: Sequence[str]) -> None:
        with self._cond:
            self._waiting.extend(job_ids)
            carrier = self._started + 1  # the next write to start takes every id waiting, these included
            while self._writing:
                self._cond.wait()
                if self._finished >= carrier:
                    return
            batch, self._waiting = self._waiting, []
            self._writing = True
            self._started += 1
        try:
            self._write(batch)
        finally:
            with self._cond:
                self._writing = False
                self._finished += 1
                self._cond.notify_all()

    def _write(self, job_ids: list[str]) -> None:
        try:
            if len(job_ids) == 1:
                self._store.mark_published(job_ids[0], self._clock())
            else:
                self._store.mark_published_many(job_ids, self._clock())
        except Exception:
            log.warning("jobs %s: published, but not marked so; the reaper may publish them once more",
                        ", ".join(job_ids[:5]))


@dataclass(frozen=True)
class SubmitRequest:
    pipeline: str
    input_key: str
    params: dict[str, Any] = field(default_factory=dict)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    ttl_s: float | None = None
    timeout_s: float | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    #: set by an async endpoint's invocation (framequeue.endpoints.invocations), not by the jobs API
    endpoint: str | None = None
    output_uri: str | None = None
    failure_uri: str | None = None
    error_webhook_url: str | None = None
    #: seconds after the job ends when its files are deleted; None: the endpoint's or FQ_RETENTION_S
    retention_s: float | None = None
    #: the job's lane
    priority: Priority = Priority.NORMAL

    def fingerprint(self) -> str:
        """Hash of everything that defines the job, to tell a retry from a different request."""
        body = {
            "pipeline": self.pipeline, "input_key": self.input_key, "params": self.params,
            "webhook_url": self.webhook_url, "webhook_secret": self.webhook_secret, "ttl_s": self.ttl_s,
            "timeout_s": self.timeout_s, "attributes": self.attributes, "endpoint": self.endpoint,
            "output_uri": self.output_uri, "failure_uri": self.failure_uri,
            "error_webhook_url": self.error_webhook_url,
        }
        if self.retention_s is not None:  # absent when unset: the hashes of earlier requests stay the same
            body["retention_s"] = self.retention_s
        if self.priority is not Priority.NORMAL:  # likewise
            body["priority"] = self.priority.value
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Submitted:
    record: dict[str, Any]
    created: bool


class JobService:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        broker: Broker,
        objects: ObjectStore,
        models: ModelRepository,
        *,
        webhook_secret: str,
        locations: Locations | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.broker = broker
        self.objects = objects
        self.models = models
        self.locations = locations or Locations(objects, "")
        self._versions = VersionBalancer()
        self._webhook_secret = webhook_secret
        self._clock = clock
        #: set when the store and the queue share a database: one commit per submit, and per job's end
        self.shared = SharedDatabase.of(store, broker)
        self._marks = PublishedMarks(store, clock)
        #: (job id, output name) -> the path through which the API streams an output itself; set by the HTTP
        #: layer, which owns its routes. Without it (no API in this process) a record's output URL is its key
        self.output_route: Callable[[str, str], str] | None = None

    # -- uploads ---------------------------------------------------------------------------------------

    def upload_key(self, filename: str | None, caller: Principal) -> str:
        return upload_key(filename, caller.tenant)

    def open_upload(self, key: str) -> AbstractContextManager[BinaryIO]:
        return self.objects.open_write(check_key(key))

    # -- jobs ------------------------------------------------------------------------------------------

    def submit(self, req: SubmitRequest, caller: Principal) -> Submitted:
        """Validate and queue a job owned by the caller's tenant. With keys in use, an input key must be under
        the tenant's own upload prefix; another one is answered as missing (nothing to probe)."""
        self._check_quota(caller)
        job, request_hash = self._prepare(req, caller)
        if self.shared is not None:
            made = self.shared.create_published([(job, request_hash)])[0]
            if isinstance(made, IdempotencyConflict):
                raise made
            crashpoint(self.settings, "after_insert")
            return Submitted(self.record(made[0]), made[1])
        stored, created = self.store.create(job, request_hash)
        if created:
            crashpoint(self.settings, "after_insert")
            self._publish_new(stored)
        return Submitted(self.record(stored), created)

    def submit_many(self, reqs: Sequence[SubmitRequest], caller: Principal) -> list[Submitted | FrameQueueError]:
        """`submit` for each request (at most MAX_BATCH), answered in order: an invalid one, or one past the
        tenant's quota, gets its error in its place and the others go on. The valid rows are written in one
        transaction and published in one call; when the broker refuses them, the rows are removed again and
        the whole call raises ServiceUnavailable (as a single submit does). A process that dies between the
        commit and the publish leaves unpublished rows, which the reaper publishes (as for one job)."""
        if len(reqs) > MAX_BATCH:
            raise PayloadTooLarge(f"a batch holds at most {MAX_BATCH} jobs, not {len(reqs)}")
        results: list[Submitted | FrameQueueError | None] = [None] * len(reqs)
        quota = self.settings.max_queued_per_tenant
        room = quota - self.store.count_queued(caller.tenant) if quota > 0 else len(reqs)
        prepared: list[tuple[int, Job, str | None]] = []
        for index, req in enumerate(reqs):
            if room <= len(prepared):
                results[index] = self._quota_error(quota)
                continue
            try:
                job, request_hash = self._prepare(req, caller)
            except FrameQueueError as exc:
                results[index] = exc
                continue
            prepared.append((index, job, request_hash))
        rows = [(job, request_hash) for _, job, request_hash in prepared]
        if not rows:
            made = []
        elif self.shared is not None:
            made = self.shared.create_published(rows)
        else:
            made = self.store.create_many(rows)
        created = [outcome[0] for outcome in made if not isinstance(outcome, FrameQueueError) and outcome[1]]
        if created:
            crashpoint(self.settings, "after_insert")
            if self.shared is None:
                self._publish_many_new(created)
        for (index, _, _), outcome in zip(prepared, made, strict=True):
            results[index] = outcome if isinstance(outcome, FrameQueueError) else Submitted(
                self.record(outcome[0]), outcome[1])
        return [r for r in results if r is not None]

    def _prepare(self, req: SubmitRequest, caller: Principal) -> tuple[Job, str | None]:
        """The queued job a request makes (checked, not stored) and its request hash (None without a key)."""
        if req.idempotency_key is not None:  # one key space per tenant
            req = replace(req, idempotency_key=f"{caller.tenant}:{req.idempotency_key}")
        pipeline = get_pipeline(req.pipeline)
        job_id = uuid.uuid4().hex
        params = self._assign_version(pipeline, req.params, job_id)
        if "://" in req.input_key:  # a location (an endpoint's InputLocation), maybe in another bucket
            objects, key = self.locations.resolve(req.input_key)
        else:
            objects, key = self.objects, check_key(req.input_key)
        # a location inside this deployment's own store is kept as its key, and must be the tenant's upload
        input_key = key if objects is self.objects else req.input_key
        if objects is self.objects and not caller.dev and not key.startswith(upload_prefix(caller.tenant)):
            raise input_not_found(req.input_key)
        size_bytes = objects.size(key)
        if size_bytes is None:
            raise input_not_found(req.input_key)
        if size_bytes > self.settings.max_upload_bytes:
            raise PayloadTooLarge(f"the input is {size_bytes} bytes; this deployment takes inputs up to "
                                  f"{self.settings.max_upload_bytes} bytes (FQ_MAX_UPLOAD_BYTES)")
        for uri in (req.output_uri, req.failure_uri):
            if uri is not None:
                self.locations.resolve(uri)
        for url in (req.webhook_url, req.error_webhook_url):
            if url is not None:
                check_url(url, allow_private=self.settings.webhook_allow_private)
                check_not_disabled(self.store, caller.tenant, url)
        ttl_s = _bounded("ttl_s", req.ttl_s, self.settings.queue_ttl_s, MAX_TTL_S)
        timeout_s = _bounded("timeout_s", req.timeout_s, self.settings.max_runtime_s,
                             self.settings.max_runtime_ceiling_s)
        retention_s = self.retention_s(req.retention_s)
        if len(req.attributes) > MAX_ATTRIBUTES:
            raise InvalidParams(f"attributes: at most {MAX_ATTRIBUTES} entries")
        now_s = self._clock()
        job = Job(
            id=job_id,
            pipeline=pipeline.name,
            pipeline_version=pipeline.version,
            input_key=input_key,
            params=params,
            status=JobStatus.QUEUED,
            created_at_s=now_s,
            updated_at_s=now_s,
            expires_at_s=now_s + ttl_s,
            timeout_s=timeout_s,
            max_attempts=self.settings.max_attempts,
            webhook_url=req.webhook_url,
            webhook_secret=(
                (req.webhook_secret or self._webhook_secret) if req.webhook_url or req.error_webhook_url else None
            ),
            attributes=dict(req.attributes),
            idempotency_key=req.idempotency_key,
            endpoint=req.endpoint,
            output_uri=req.output_uri,
            failure_uri=req.failure_uri,
            error_webhook_url=req.error_webhook_url,
            tenant=caller.tenant,
            retention_s=retention_s,
            priority=req.priority,
        )
        return job, req.fingerprint() if req.idempotency_key else None

    def retention_s(self, value: float | None, *, default: bool = True) -> float | None:
        """A retention_s a request named (checked: 0..FQ_RETENTION_CEILING_S), or, with `default`, the
        deployment's FQ_RETENTION_S (0 there: none, files kept until the record is purged)."""
        if value is None:
            return (self.settings.retention_s or None) if default else None
        ceiling_s = self.settings.retention_ceiling_s
        if not 0 <= value <= ceiling_s:  # NaN fails too
            raise InvalidParams(f"retention_s must be >= 0 and at most {ceiling_s:.0f} seconds "
                                "(FQ_RETENTION_CEILING_S)")
        return float(value)

    def _publish_new(self, job: Job) -> None:
        """Publish a just-inserted job. A broker that refuses it gets the row deleted again and the caller a
        503, so a failed submit leaves no job behind to run later (no orphan row); only when the store fails
        too does the row stay, and the reaper publishes it (an idempotency key then finds it on retry). Once
        the broker has the message the job is accepted: a failed mark_published (PublishedMarks coalesces
        concurrent ones) costs a turned-away duplicate at most."""
        self._publish_many_new([job])

    def _publish_many_new(self, jobs: list[Job]) -> None:
        """_publish_new for a batch's rows, in one broker call and one mark_published write. A refusal may
        come after some ids reached the broker: their rows are removed too, and a message whose row is gone
        is turned away at its claim."""
        job_ids = [job.id for job in jobs]
        try:
            if len(jobs) == 1:
                self.broker.publish(jobs[0].id, jobs[0].priority)
            else:
                self.broker.publish_many(job_ids, [job.priority for job in jobs])
        except Exception as exc:
            for job_id in job_ids:
                try:
                    self.store.discard_unpublished(job_id)
                except Exception:
                    log.warning("job %s: the broker refused it and the row could not be removed; the reaper "
                                "will publish it", job_id)
            if isinstance(exc, FrameQueueError) and not isinstance(exc, ServiceUnavailable):
                raise
            why = exc.message if isinstance(exc, FrameQueueError) else type(exc).__name__
            what = "the job" if len(job_ids) == 1 else "the jobs"
            raise ServiceUnavailable(f"the queue did not accept {what} ({why}); nothing was created, "
                                     "try again") from exc
        self._marks.add(job_ids)

    def _assign_version(self, pipeline: Pipeline, raw: dict[str, Any], job_id: str) -> dict[str, Any]:
        """Validated params; when the job's model has endpoints in the registry and the caller pinned no
        version, `model_version` is the one the balancer picks by the versions' weights, recorded in the job
        so every frame and attempt runs it (sticky A/B). Without registry
        rows the pipeline's own default stands (the newest version)."""
        params = pipeline.validate(raw, self.models)
        model = params.get("model")
        if not isinstance(model, str) or raw.get("model_version") is not None:
            return params
        rows = self.store.list_model_endpoints(model)
        if not rows:
            return params
        return pipeline.validate({**raw, "model_version": self._versions.pick(rows)}, self.models)

    def publish(self, job_id: str, priority: Priority | None = None) -> None:
        """Put a queued job's id on the queue, in its lane, and record that the broker confirmed it. Without
        a priority the job's own is read from the store (a requeue keeps its lane); a job gone meanwhile is
        published as normal, and its claim turns the message away."""
        if priority is None:
            try:
                priority = self.store.get(job_id).priority
            except JobNotFound:
                priority = Priority.NORMAL
        self.broker.publish(job_id, priority)
        self.store.mark_published(job_id, self._clock())

    def write_document(self, uri: str, body: bytes) -> None:
        """Write a job's document (its failure document) to a location, once: ObjectExists if it is there."""
        objects, key = self.locations.resolve(uri)
        objects.put(key, body, create_only=True)

    def _check_quota(self, caller: Principal) -> None:
        """The tenant's queued jobs against FQ_MAX_QUEUED_PER_TENANT. A count, then an insert: concurrent
        submits can pass it by as many as there are at once (a soft quota)."""
        quota = self.settings.max_queued_per_tenant
        if quota > 0 and self.store.count_queued(caller.tenant) >= quota:
            raise self._quota_error(quota)

    @staticmethod
    def _quota_error(quota: int) -> QuotaExceeded:
        return QuotaExceeded(f"this tenant has {quota} queued jobs, its quota; submit again once some have "
                             "started", retry_after_s=QUOTA_RETRY_AFTER_S)

    def owned(self, job_id: str, caller: Principal) -> Job:
        """The caller's job; another tenant's answers exactly as a missing one."""
        try:
            job = self.store.get(job_id)
        except JobNotFound:
            raise _job_not_found() from None
        if job.tenant != caller.tenant:
            raise _job_not_found()
        return job

    def get(self, job_id: str, caller: Principal) -> dict[str, Any]:
        return self.record(self.owned(job_id, caller))

    def list_jobs(
        self, caller: Principal, status: str | None = None, limit: int = 50, after: str | None = None
    ) -> dict[str, Any]:
        try:
            wanted = None if status is None else JobStatus(status)
        except ValueError:
            choices = ", ".join(s.value for s in JobStatus)
            raise InvalidParams(f"status must be one of {choices}") from None
        if not 1 <= limit <= 500:
            raise InvalidParams("limit must be between 1 and 500")
        jobs = self.store.list_jobs(wanted, limit, after, tenant=caller.tenant)
        return {
            "jobs": [self.record(j) for j in jobs],
            "next_after": jobs[-1].id if len(jobs) == limit else None,
        }

    def cancel(self, job_id: str, caller: Principal) -> dict[str, Any]:
        self.owned(job_id, caller)  # a job's tenant never changes, so checking first is enough
        job = self.store.cancel(job_id, self._clock())
        if job.segments_total is not None and job.status.terminal:  # a split job: its segments stopped with it
            for key in self.objects.list(segments_prefix(job.id)):
                self.objects.delete(key)
        return self.record(job)

    def output_key(self, job_id: str, name: str, caller: Principal) -> str:
        job = self.owned(job_id, caller)
        key = job.outputs.get(name)
        if key is None:
            have = ", ".join(sorted(job.outputs)) or "none yet"
            raise NotFound(f"job {job_id} has no output {name!r} (outputs: {have})")
        return key

    def reap(self) -> list[str]:
        """Expire and requeue what needs it; publish the requeued ids (returned); end the queued jobs the
        broker dead-lettered."""
        requeued = self.store.reap(self._clock())
        for job_id in requeued:
            self.publish(job_id)
        # a submit or requeue that died between the row and the publish left a job with no message, or the
        # broker lost it (restarted without persistence): publish again, at most once per interval
        now_s = self._clock()
        lost = self.store.unpublished(
            now_s - self.settings.republish_after_s, REAP_BATCH, now_s - self.settings.republish_queued_after_s
        )
        for job_id in lost:
            self.publish(job_id)
        for job_id in self.broker.take_dead(REAP_BATCH):
            self.store.fail_dead_lettered(job_id, self._clock())
        return requeued

    def ready(self) -> None:
        self.store.ping()
        self.broker.stats()

    def record(self, job: Job) -> dict[str, Any]:
        record = job_record(
            job,
            output_location=self.objects.url(output_prefix(job.id)),
            failure_location=self.objects.url(failure_key(job.id)),
        )
        if job.segments_total is not None:  # a split parent: its segments' states and summed progress
            record.update(split_view(job, self.store.segments(job.id)))
        # where a browser fetches each output: presigned on S3 (fresh with every read of the record), else the
        # API's own Range-capable route (output_route), relative to the API's base URL
        route = self.output_route
        record["output_urls"] = {
            name: download_url(self.objects, key, route(job.id, name) if route else key, OUTPUT_URL_EXPIRES_S)
            for name, key in job.outputs.items()
        }
        return record


def _job_not_found() -> JobNotFound:
    # the same text whether the row is missing or another tenant's; the id is not echoed (it may be junk)
    return JobNotFound("no such job")


def _bounded(name: str, value: float | None, default: float, ceiling: float) -> float:
    if value is None:
        return default
    if not 0 < value <= ceiling:
        raise InvalidParams(f"{name} must be > 0 and at most {ceiling:.0f} seconds")
    return float(value)
