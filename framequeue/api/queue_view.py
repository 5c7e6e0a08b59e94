"""The queue as the dashboard draws it: the broker's numbers now, the tenant's running jobs with the worker
holding each, its finished and failed jobs over the last hour in buckets, and the autoscaler's last decisions
when `framequeue autoscale` runs with this home. Read-only."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from framequeue.jobs import Job, JobStatus, iso
from framequeue.scaling.autoscale.decisions import default_decisions_path, tail_decisions
from framequeue.service import JobService
from framequeue.tenants.auth import Principal

WINDOW_S = 3600.0
BUCKET_S = 60.0
#: the newest jobs looked at for the hour's counts (two pages of the store's largest)
SCAN_LIMIT_JOBS = 1000
PAGE_JOBS = 500
#: the autoscaler's newest decisions shown
DECISIONS_SHOWN = 20
#: the fields of a decision the page draws
DECISION_FIELDS = ("time", "t", "waiting", "in_flight", "current", "desired", "live", "draining", "reason")


def queue_view(service: JobService, caller: Principal, clock: Callable[[], float] = time.time) -> dict[str, Any]:
    stats = service.broker.stats()
    now_s = clock()
    running = _jobs(service, caller, JobStatus.RUNNING, PAGE_JOBS)
    recent = _jobs(service, caller, None, SCAN_LIMIT_JOBS)
    buckets = int(WINDOW_S // BUCKET_S)
    succeeded, failed = [0] * buckets, [0] * buckets
    for job in recent:
        if job.finished_at_s is None or not 0 <= now_s - job.finished_at_s < WINDOW_S:
            continue
        index = buckets - 1 - int((now_s - job.finished_at_s) // BUCKET_S)
        if job.status is JobStatus.SUCCEEDED:
            succeeded[index] += 1
        elif job.status in (JobStatus.FAILED, JobStatus.EXPIRED):
            failed[index] += 1
    return {
        "at": iso(now_s),
        "queue": {
            "backlog_jobs": stats.ready + stats.delayed,
            "ready_jobs": stats.ready,
            "delayed_jobs": stats.delayed,
            "in_flight_jobs": stats.in_flight,
            "dead_letter_jobs": stats.dead,
            "oldest_waiting_age_s": stats.oldest_ready_age_s,
        },
        "running": [_running(j) for j in running],
        "last_hour": {"bucket_s": BUCKET_S, "succeeded": succeeded, "failed": failed},
        "autoscaler": autoscaler_view(default_decisions_path(service.settings.home)),
    }


def autoscaler_view(path: Path) -> dict[str, Any] | None:
    """The newest DECISIONS_SHOWN decisions of the autoscaler's file, oldest first; None without the file."""
    decisions = tail_decisions(path, DECISIONS_SHOWN)
    if decisions is None:
        return None
    return {"decisions": [{k: d.get(k) for k in DECISION_FIELDS} for d in decisions]}


def _jobs(service: JobService, caller: Principal, status: JobStatus | None, limit: int) -> list[Job]:
    jobs: list[Job] = []
    after = None
    while len(jobs) < limit:
        page = service.store.list_jobs(status, min(PAGE_JOBS, limit - len(jobs)), after, tenant=caller.tenant)
        jobs.extend(page)
        if len(page) < PAGE_JOBS:
            break
        after = page[-1].id
    return jobs


def _running(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "pipeline": job.pipeline,
        "worker": job.lease_owner,
        "started_at": iso(job.started_at_s),
        "progress": job.progress.to_dict(),
    }
