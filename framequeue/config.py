"""Typed, frozen settings, built once at the edge (CLI or app factory) from the environment, and the
lookup that turns a backend URL setting into its class.

Backends are chosen by URL, never by code changes: each port's package (brokers, storage, jobstore) keeps a
table of its schemes and opens its backends through `backend_class`, which imports a backend only when a
URL names it, so a missing optional client only matters to the deployments that use it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from framequeue.errors import InvalidParams

#: setting name -> environment variable; the CLI names these in --help
ENV_PREFIX = "FQ_"
#: other names accepted for a setting (the deployment docs' names); FQ_* wins when both are set
ENV_ALIASES = {"database_url": "FRAMEQUEUE_DB_URL", "broker_url": "FRAMEQUEUE_QUEUE_URL"}


@dataclass(frozen=True)
class Settings:
    #: folder for the embedded deployment: SQLite file, objects, models, scratch
    home: Path = Path(".framequeue")
    #: job store URL; empty means sqlite:///<home>/fq.db
    database_url: str = ""
    #: queue URL; empty means the job store's URL (one SQLite file for jobs and queue)
    broker_url: str = ""
    #: object store URL; empty means file://<home>/objects
    storage_url: str = ""
    #: model repository folder; empty means <home>/models
    model_repo: str = ""
    #: local scratch for inputs and outputs while a job runs; empty means <home>/scratch
    scratch_dir: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    #: worker processes started by `framequeue up`
    workers: int = 2
    #: CPU threads one job may use (ONNX Runtime intra-op, decoder)
    worker_threads: int = 1
    lease_s: float = 120.0
    heartbeat_s: float = 30.0
    max_attempts: int = 3
    #: default and ceiling for a job's timeout_s (SageMaker's invocation limit is 3600)
    max_runtime_s: float = 900.0
    max_runtime_ceiling_s: float = 3600.0
    #: how long a job may wait in the queue before it ends `expired` (SageMaker's RequestTTLSeconds)
    queue_ttl_s: float = 6 * 3600.0
    reap_interval_s: float = 30.0
    #: a `low` job waiting this long is served as `normal` (framequeue.brokers.base: lanes)
    low_max_wait_s: float = 300.0
    #: the lanes this deployment's workers receive from: "high", "normal,low"; empty: every lane (a worker
    #: group scaled on its own lanes' backlog, framequeue.brokers.base)
    lanes: str = ""
    #: /metrics' backlog per tenant names the tenants with the most jobs, this many; the others count as "other"
    metrics_top_tenants: int = 10
    #: a queued job whose message the broker never confirmed (the submit died between the row and the
    #: publish) is published by the reaper once its row is this old
    republish_after_s: float = 10.0
    #: a job still queued this long after its message was published is published again, in case the broker
    #: lost the message; a duplicate costs one turned-away delivery, a lost one the job
    republish_queued_after_s: float = 600.0
    #: jobs one warm media child runs before it is replaced by a fresh one (as Celery's max_tasks_per_child);
    #: 1 gives every job a fresh process. A child is replaced sooner after any job that did not end cleanly.
    child_max_jobs: int = 100
    #: address-space cap (RLIMIT_AS) of each media child, MiB; 4K decode plus ONNX Runtime fit well within
    #: the default. A job that needs more fails `resource_exhausted`. 0: no cap
    child_memory_mb: int = 4096
    #: on SIGTERM, how long a worker lets the current job run before handing it back
    drain_s: float = 25.0
    max_upload_bytes: int = 4 * 1024**3
    max_json_bytes: int = 1024 * 1024
    #: server-wide Standard Webhooks secret (whsec_…) used when a job names no secret of its own
    webhook_secret: str = ""
    #: development only: let webhooks reach loopback and private addresses, over plain http or low ports
    webhook_allow_private: bool = False
    webhook_timeout_s: float = 10.0
    #: a running job with a webhook sends `job.progress` at most this often, seconds (0: never)
    webhook_progress_s: float = 10.0
    #: `required`: every route but /healthz, /readyz and /metrics needs an API key, even while none exists.
    #: Anything else: keys are required once the job store holds one; with none, the API runs open as
    #: tenant `default` (single-tenant development mode, said in a warning at start-up)
    auth: str = ""
    #: submits and uploads a tenant may make per second, per API process (token bucket); 0: no limit
    rate_limit_per_s: float = 0.0
    #: the bucket's size (a burst allowed at once); 0: max(1, rate_limit_per_s)
    rate_burst: int = 0
    #: tenants' weights in the fair share of each lane's workers, "tenantA=3,tenantB=1"; a tenant not named
    #: weighs 1 (framequeue.tenants.fairshare)
    tenant_weights: str = ""
    #: queued jobs a tenant may have at once; a submit past it answers 429 quota_exceeded. 0: no quota
    max_queued_per_tenant: int = 0
    #: a worker serves Prometheus /metrics on this port (0: not at all); the API serves them at /metrics
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    #: default retention_s of a job: its files (input upload, outputs, failure document) are deleted this long
    #: after it ended (framequeue.retention); 0: kept until the record is purged. A submit may name its own
    retention_s: float = 0.0
    #: the most retention_s a submit may name
    retention_ceiling_s: float = 10 * 366 * 86400.0
    #: an ended job's record (and any files it still has) is purged this long after it ended; 0: kept forever
    record_retention_s: float = 30 * 86400.0
    #: how often the API's sweeper looks for jobs due, and how many it handles per pass
    retention_sweep_interval_s: float = 60.0
    retention_batch: int = 100
    #: a long video (framequeue.worker.split): a job whose input runs longer than split_min_s is split into
    #: segments of about segment_s, each decoded from split_lead_in_s before its start, when split_workers
    #: (the workers the deployment expects to share a job; 1: splitting gains nothing, so only a job whose
    #: params say `split: true` is split) is more than one. A job's `split: false` never splits
    split_min_s: float = 120.0
    segment_s: float = 60.0
    split_lead_in_s: float = 1.0
    split_workers: int = 1
    #: fault injection for the fault tests only: the process exits (status 137, like kill -9) when it
    #: reaches this point of the lifecycle (after_insert, after_claim, after_upload, after_commit, before_ack,
    #: before_webhook: the API, about to deliver a webhook event; before_stitch: a worker that claimed a split
    #: parent to join its segments)
    crash_at: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from FQ_* variables; explicit overrides (CLI flags) win."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = source.get(ENV_PREFIX + f.name.upper()) or source.get(ENV_ALIASES.get(f.name, ""))
            if raw is not None and raw != "":
                values[f.name] = _parse(f.type, raw, f.name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).resolved()

    def resolved(self) -> Settings:
        """Fill the URLs that default to places under `home`, with absolute paths."""
        home = self.home.expanduser().resolve()
        db = self.database_url or f"sqlite:///{home / 'fq.db'}"
        return replace(
            self,
            home=home,
            database_url=db,
            broker_url=self.broker_url or db,
            storage_url=self.storage_url or f"file://{home / 'objects'}",
            model_repo=self.model_repo or str(home / "models"),
            scratch_dir=self.scratch_dir or str(home / "scratch"),
        )


class Backend(NamedTuple):
    """Where a URL scheme's backend lives."""

    module: str
    cls: str
    #: the pip extra that installs its client library; "" when framequeue's own dependencies suffice
    extra: str = ""


def backend_class(kind: str, schemes: Mapping[str, Backend], url: str) -> Any:
    """The class `schemes` gives `url`'s scheme, imported now. InvalidParams lists the schemes there are,
    or says which extra to install when the backend's client library is missing."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in schemes:
        supported = ", ".join(f"{s}://" for s in schemes)
        raise InvalidParams(f"no {kind} for {scheme or 'scheme-less'} URLs (supported: {supported})")
    backend = schemes[scheme]
    try:
        return getattr(importlib.import_module(backend.module), backend.cls)
    except ImportError as exc:
        hint = f"pip install 'framequeue[{backend.extra}]'" if backend.extra else "reinstall framequeue"
        raise InvalidParams(f"the {scheme}:// {kind} needs packages that are missing ({exc.name}): {hint}") from exc


def crashpoint(settings: Settings, point: str) -> None:
    """Die here, abruptly, if the fault tests asked for it (see Settings.crash_at)."""
    if settings.crash_at == point:
        os._exit(137)


def env_var(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _parse(type_name: Any, raw: str, name: str) -> Any:
    kind = str(type_name)
    try:
        if kind == "bool":
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError as exc:
        raise ValueError(f"{env_var(name)}={raw!r} is not a valid {kind}") from exc
    return raw
