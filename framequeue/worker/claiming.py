"""Which job a delivery runs. The job store shares each lane among tenants by weight (JobStateStore.claim_fair,
framequeue.tenants.fairshare), so the message in hand may bring another tenant's job instead of its own.

Every waiting job keeps a message of its own: when the job claimed is not the message's, the message's job is
published again at once (a duplicate is harmless: the claim turns it away). The message in hand is still held,
its visibility extended by the heartbeat, until the run ends, then acked: a worker killed meanwhile leaves it
to come back, and the run's lease to the reaper, so nothing is lost. A redelivered message takes its own job
only (`claim`), so a message's delivery count, which dead-letters its job, counts its own job's runs and at
most one other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from framequeue.brokers.base import Message
from framequeue.jobs import Job
from framequeue.runtime import Runtime

log = logging.getLogger("framequeue.worker")


@dataclass(frozen=True)
class Claimed:
    job: Job
    #: the message in hand is spent once the run ends (ack); False: its own job still waits and could not be
    #: published again, so the message goes back (nack) instead
    spent: bool = True


def claim_for(
    rt: Runtime, message: Message, owner: str, lease_s: float, now_s: float, weights: Mapping[str, float]
) -> Claimed | None:
    """Claim the job this delivery runs; None when the message's job is not claimable (the message is spent)."""
    if message.deliveries > 1:
        job = rt.store.claim(message.job_id, owner, lease_s, now_s)
        return None if job is None else Claimed(job)
    job = rt.store.claim_fair(message.job_id, owner, lease_s, now_s, weights)
    if job is None or job.id == message.job_id:
        return None if job is None else Claimed(job)
    log.info("job %s: runs in the turn of job %s's message (fair share of lane %s)",
             job.id, message.job_id, job.priority.value)
    try:
        rt.service.publish(message.job_id, job.priority)  # the same lane: claim_fair takes jobs of the message's
    except Exception as exc:
        log.warning("job %s: could not publish it again (%s); its message goes back after this run",
                    message.job_id, exc)
        return Claimed(job, spent=False)
    return Claimed(job)


__all__ = ["Claimed", "claim_for"]
