"""The job store's ports, one small protocol per concern, and JobStore, the composite every backend
implements (sqlite://, postgresql://, memory://; one contract suite per concern runs against each).

The job table is the truth; the broker only carries job ids. Every write a worker makes after its claim
names the fencing token it got from `claim`; a write whose token no longer matches (the lease expired and
the job was claimed again, or it ended) raises LeaseLost and changes nothing. A terminal state and the
outbox rows it writes (framequeue.notify.events says which) are written in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from framequeue.endpoints.async_endpoints import Endpoint
from framequeue.endpoints.routing import ModelEndpoint, State
from framequeue.errors import IdempotencyConflict
from framequeue.jobs import Job, JobError, JobProgress, JobStatus, LaneBacklog, RunTotals
from framequeue.notify.outbox import Delivery, DisabledWebhook, OutboxStore
from framequeue.tenants.auth import ApiKey

__all__ = [
    "ApiKeyStore",
    "DeliveryStore",
    "EndpointStore",
    "JobStateStore",
    "JobStore",
    "ModelEndpointStore",
    "OutboxStore",
    "RetentionStore",
    "SegmentStore",
    "TxJobStore",
]


class JobStateStore(Protocol):
    """Jobs and their state machine: submit, read, the worker's fenced writes, control and the
    bookkeeping of which jobs the broker holds a message for."""

    def create(self, job: Job, request_hash: str | None = None) -> tuple[Job, bool]:
        """Insert a queued job; with an idempotency key already used, return (existing, False) for
        the same request_hash and raise IdempotencyConflict for another."""
        ...

    def create_many(self, jobs: Sequence[tuple[Job, str | None]]) -> list[tuple[Job, bool] | IdempotencyConflict]:
        """`create` for each (job, request_hash) in order, in ONE transaction: all the new rows commit together
        or none does (an error raised leaves nothing). A key already used answers (existing, False) or, for
        another request_hash, an IdempotencyConflict in that item's place (the other items still commit);
        a key repeated within the call answers its first item's job, created once."""
        ...

    def get(self, job_id: str) -> Job:
        """The job, or JobNotFound."""
        ...

    def list_jobs(
        self, status: JobStatus | None = None, limit: int = 50, after: str | None = None, tenant: str | None = None
    ) -> list[Job]:
        """Newest first; `after` is the id of the last job of the previous page; only `tenant`'s when given."""
        ...

    def count_queued(self, tenant: str) -> int:
        """How many of the tenant's jobs are queued (its quota counts them)."""
        ...

    def lane_backlog(self) -> list[LaneBacklog]:
        """Queued and running jobs counted per (priority, tenant), one entry per pair that has any, in no set
        order; with each pair's oldest queued created_at_s. One grouped read."""
        ...

    def claim(self, job_id: str, owner: str, lease_s: float, now_s: float) -> Job | None:
        """Take a queued job (or a running one whose lease expired): status running, attempts + 1,
        a new fencing token, a new open attempt in attempt_history (an open one before it: lease_lost).
        None when the job is not claimable (ended, leased, cancelled, exhausted)."""
        ...

    def claim_fair(
        self, job_id: str, owner: str, lease_s: float, now_s: float, weights: Mapping[str, float]
    ) -> Job | None:
        """`claim`, with the job's lane shared among tenants by weight (framequeue.tenants.fairshare, one
        transaction): when `job_id` is claimable, the job claimed is it if its tenant's turn has come, else
        the oldest waiting job (queued, its message published) of the tenant whose turn it is; the lane's clock
        and that tenant's tag move with the claim (not when the lane has only one waiting tenant). `weights`
        names tenants' weights (others weigh 1). None, as for `claim`, when `job_id` is not claimable: the
        caller runs whichever job it gets, and a job it did not get keeps needing a message of its own."""
        ...

    def renew(self, job_id: str, token: int, lease_s: float, now_s: float) -> bool:
        """Push the lease deadline; returns whether a cancel was requested. LeaseLost if token is stale."""
        ...

    def report_progress(
        self, job_id: str, token: int, progress: JobProgress, now_s: float, *, event: bool = False
    ) -> bool:
        """Store progress; returns whether a cancel was requested. LeaseLost if token is stale. With `event`
        and a job with a webhook, a `job.progress` outbox event (framequeue.notify.events.progress_row, n
        counting from 1) is written in the same transaction; the terminal state later ends those still unsent."""
        ...

    def finish(
        self,
        job_id: str,
        token: int,
        status: JobStatus,
        now_s: float,
        *,
        error: JobError | None = None,
        outputs: dict[str, str] | None = None,
        progress: JobProgress | None = None,
        events: Sequence[Mapping[str, Any]] | None = None,
        totals: RunTotals | None = None,
    ) -> Job:
        """Commit a terminal state (and its outbox event) if the token holds, else LeaseLost; `progress`,
        when given, is stored in the same transaction (the final count of a successful job), and so are
        `events`, the pipeline's (the first MAX_EVENTS of them, events_truncated saying when more were), and
        `totals` (what a successful run amounted to: seconds of video, event and detection counts).
        The running attempt of attempt_history ends in the same write (framequeue.jobs.end_outcome)."""
        ...

    def release(
        self, job_id: str, token: int, now_s: float, *, count_attempt: bool, error: JobError | None = None
    ) -> Job:
        """Hand a running job back to the queue (drain, retryable failure). LeaseLost if stale. Its attempt
        ends `handed_back` (drain: not counted) or `failed` with `error` (counted), in the same write."""
        ...

    def cancel(self, job_id: str, now_s: float) -> Job:
        """A queued job ends cancelled at once; a running one gets cancel_requested for its worker."""
        ...

    def reap(self, now_s: float) -> list[str]:
        """End queued jobs past their TTL (expired); return running jobs whose lease expired to the
        queue (their attempt ends lease_lost), or end them (cancelled when asked, failed: attempts_exhausted
        when out of attempts).
        Returns the ids put back in the queue, for the caller to publish (they count as unpublished
        until mark_published)."""
        ...

    def discard_unpublished(self, job_id: str) -> bool:
        """Delete a queued job whose message was never published (the broker refused it at submit);
        returns whether a row went. A published or started job is never touched."""
        ...

    def mark_published(self, job_id: str, now_s: float) -> None:
        """The broker confirmed this job's message (at submit, or after a requeue)."""
        ...

    def mark_published_many(self, job_ids: Sequence[str], now_s: float) -> None:
        """mark_published for several jobs in one write (a batch submit's)."""
        ...

    def unpublished(self, older_than_s: float, limit: int, stale_before_s: float | None = None) -> list[str]:
        """Queued jobs the reaper should publish (again): those whose message the broker never confirmed,
        created before `older_than_s` (a submit that died between the row and the publish), and, when
        `stale_before_s` is given, those still queued though published before it (a broker that lost its
        messages, as Redis restarted without persistence). A duplicate message is harmless: the claim
        turns it away."""
        ...

    def fail_dead_lettered(self, job_id: str, now_s: float) -> bool:
        """The broker gave up on this job's message: a job still queued ends `failed: attempts_exhausted`.
        A running or ended job is left alone (its lease or its end decide). Returns whether it was ended."""
        ...


class DeliveryStore(Protocol):
    """The outbox as a job's owner and an admin see it: deliveries per job, replay, and webhook URLs
    disabled by a 410 (the dispatcher's side is OutboxStore)."""

    def list_deliveries(self, job_id: str) -> list[Delivery]:
        """The job's outbox events (webhook events and documents), oldest first."""
        ...

    def get_delivery(self, event_id: str) -> Delivery:
        """One outbox event, or DeliveryNotFound."""
        ...

    def replay_delivery(self, event_id: str, now_s: float) -> Delivery:
        """Make an event (delivered, dead or pending) due again at now_s, its attempts kept; DeliveryNotFound
        when there is none."""
        ...

    def webhook_disabled(self, tenant: str, url: str) -> DisabledWebhook | None:
        """The record when the tenant's URL answered 410 Gone (see OutboxStore.disable_endpoint)."""
        ...

    def list_disabled_webhooks(self, tenant: str | None = None) -> list[DisabledWebhook]:
        """Disabled URLs of one tenant, or all; oldest first."""
        ...

    def enable_webhook(self, tenant: str, url: str) -> bool:
        """Enable a disabled URL again (events written from now on are sent); whether it was disabled."""
        ...


class EndpointStore(Protocol):
    """Async endpoints (SageMaker-style), each its tenant's alone."""

    def create_endpoint(self, ep: Endpoint) -> Endpoint:
        """Store a new async endpoint; EndpointExists when the name is taken."""
        ...

    def get_endpoint(self, name: str, tenant: str) -> Endpoint:
        """The tenant's endpoint, or EndpointNotFound (also for another tenant's: the same answer)."""
        ...

    def list_endpoints(self, tenant: str) -> list[Endpoint]: ...

    def delete_endpoint(self, name: str, tenant: str) -> None:
        """Remove an endpoint (its jobs keep running); EndpointNotFound when there is none."""
        ...


class ModelEndpointStore(Protocol):
    """The model endpoint registry: (model, version) -> URLs with weights."""

    def register_model_endpoint(self, ep: ModelEndpoint) -> ModelEndpoint:
        """Store a model endpoint row (model, version) -> url; ModelEndpointExists when that model version
        already has that URL."""
        ...

    def list_model_endpoints(self, model: str | None = None) -> list[ModelEndpoint]:
        """Rows of one model, or all; ordered by model, version, then registration."""
        ...

    def get_model_endpoint(self, endpoint_id: str) -> ModelEndpoint:
        """The row, or ModelEndpointNotFound."""
        ...

    def set_model_endpoint_weight(self, endpoint_id: str, weight: float) -> ModelEndpoint:
        """Reweigh a row; ModelEndpointNotFound when there is none."""
        ...

    def set_model_endpoint_state(self, endpoint_id: str, state: State) -> ModelEndpoint:
        """Drain (or reactivate) a row; ModelEndpointNotFound when there is none."""
        ...

    def remove_model_endpoint(self, endpoint_id: str) -> None:
        """Delete a row; ModelEndpointNotFound when there is none."""
        ...


class ApiKeyStore(Protocol):
    """API keys, kept as hashes, revoked for good."""

    def create_api_key(self, key: ApiKey) -> ApiKey:
        """Store a key's row (its hash, never the key)."""
        ...

    def get_api_key(self, key_id: str) -> ApiKey:
        """The row, revoked or not, or ApiKeyNotFound."""
        ...

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        """The row with this hash, revoked or not."""
        ...

    def list_api_keys(self, tenant: str | None = None) -> list[ApiKey]:
        """Rows of one tenant, or all; oldest first."""
        ...

    def revoke_api_key(self, key_id: str, now_s: float) -> ApiKey:
        """Revoke a key for good (a second revoke keeps the first time); ApiKeyNotFound when there is none."""
        ...

    def has_api_keys(self) -> bool:
        """Whether any key was ever created, revoked ones included (none: the API runs open, in development
        mode)."""
        ...


class RetentionStore(Protocol):
    """Retention (framequeue.retention): ended jobs whose files are due for deletion, the claim of one
    expiry, and the purge of old records. Only ended jobs are ever selected or changed."""

    def outputs_due(self, now_s: float, limit: int, finished_before_s: float | None = None) -> list[Job]:
        """Ended jobs not yet swept whose finished_at_s + retention_s <= now_s, or (with finished_before_s)
        that finished before it; oldest end first (framequeue.jobs.outputs_due)."""
        ...

    def mark_outputs_expired(self, job_id: str, now_s: float) -> bool:
        """Set outputs_expired_at_s and empty the outputs map of an ended job not yet swept; whether this call
        did it (of two sweepers only one gets True)."""
        ...

    def input_in_use(self, input_key: str, job_id: str) -> bool:
        """Whether a job other than job_id, whose files are not swept yet, names this input."""
        ...

    def records_due(self, finished_before_s: float, limit: int) -> list[Job]:
        """Ended jobs that finished at or before finished_before_s; oldest end first."""
        ...

    def purge_record(self, job_id: str, finished_before_s: float) -> bool:
        """Delete such a job's row and its outbox rows; whether this call deleted it."""
        ...


class SegmentStore(Protocol):
    """A long video split into segment jobs (framequeue.worker.split) and joined again, exactly once, through
    the same leases and fencing as any job.

    A segment job carries `parent_id` and `segment_index`; it runs, retries and ends as any job, hidden from
    list_jobs and count_queued. Every terminal write of the JobStateStore (finish, reap, a claim's verdict,
    cancel, fail_dead_lettered) applies, in its own transaction: a segment's success adds one to its
    parent's segments_done, and the one that makes it segments_total puts the parked parent back in the
    queue (unpublished: the caller publishes it, else the reaper's `unpublished` does) for its stitch; a
    segment that ends otherwise ends its parent `failed: segment_failed`; a parent that ends otherwise
    cancels its queued segments and asks its running ones to stop. Cancelling a parked parent ends it at once."""

    def split(self, parent_id: str, token: int, segments: Sequence[Job], now_s: float) -> Job:
        """In ONE transaction fenced by the parent's lease token (else LeaseLost): insert `segments`
        (framequeue.jobs.segment_job, indexes 0..n-1, queued and unpublished), set the parent's
        segments_total, and park it: still running, no lease (not reapable), a new lease token (the splitting
        worker's heartbeat is fenced off), its attempt ended `split` and not counted. A parent whose cancel
        was asked ends cancelled instead (and no segment is made). InvalidTransition for a parent split
        already, a segment, or no segments."""
        ...

    def segments(self, parent_id: str) -> list[Job]:
        """The parent's segment jobs, by index (none for a job not split)."""
        ...


class JobStore(
    JobStateStore, OutboxStore, DeliveryStore, EndpointStore, ModelEndpointStore, ApiKeyStore, RetentionStore,
    SegmentStore, Protocol,
):
    """All eight concerns in one store (they share its transactions: a terminal state writes its
    outbox rows atomically), and the store's own life."""

    def ping(self) -> None:
        """Raise ServiceUnavailable when the store cannot be reached."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class TxJobStore(Protocol):
    """Optional: a job store on a SQL database that lets a queue on the same database (a
    framequeue.brokers.in_tx.InTxQueue with an equal `database`) write inside its transactions, so that one
    commit holds a job's row and its message, or its terminal state and the ack of its message."""

    #: the database: an SQLite file's resolved path, a PostgreSQL conninfo
    database: str

    def create_many(
        self, jobs: Sequence[tuple[Job, str | None]], *, enqueue: Callable[[Any, list[Job]], None] | None = None
    ) -> list[tuple[Job, bool] | IdempotencyConflict]:
        """JobStateStore.create_many; with `enqueue`, it is called in the same transaction with the driver's
        connection and the jobs created (none: not called), and those rows are marked published."""
        ...

    def finish(
        self,
        job_id: str,
        token: int,
        status: JobStatus,
        now_s: float,
        *,
        error: JobError | None = None,
        outputs: dict[str, str] | None = None,
        progress: JobProgress | None = None,
        events: Sequence[Mapping[str, Any]] | None = None,
        totals: RunTotals | None = None,
        then: Callable[[Any], None] | None = None,
    ) -> Job:
        """JobStateStore.finish; with `then`, it is called after the terminal write, in the same transaction,
        with the driver's connection (nothing of it commits when the token no longer holds)."""
        ...
