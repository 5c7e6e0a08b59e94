"""Lease arithmetic, pure: a worker owns a job until `deadline_s`, proven by a fencing token.

Deadlines are epoch seconds because they are compared across processes and hosts through the job store;
each worker measures its own intervals with a monotonic clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lease:
    job_id: str
    owner: str
    #: increases by one on every claim of the job; every write names it
    token: int
    deadline_s: float

    def expired(self, now_s: float) -> bool:
        return now_s >= self.deadline_s

    def remaining_s(self, now_s: float) -> float:
        return max(0.0, self.deadline_s - now_s)

    def renewed(self, now_s: float, lease_s: float) -> Lease:
        """The same lease pushed to now + lease_s; a renewal never shortens a lease."""
        return Lease(self.job_id, self.owner, self.token, max(self.deadline_s, now_s + lease_s))


def new_deadline_s(now_s: float, lease_s: float) -> float:
    if lease_s <= 0:
        raise ValueError(f"lease_s must be positive, got {lease_s}")
    return now_s + lease_s


def heartbeat_due(last_renew_s: float, now_s: float, heartbeat_s: float) -> bool:
    return now_s - last_renew_s >= heartbeat_s


def eta_s(frames_done: int, frames_total: int | None, fps: float) -> float | None:
    """Seconds left at the current rate; None when unknown."""
    if frames_total is None or fps <= 0:
        return None
    return max(0, frames_total - frames_done) / fps
