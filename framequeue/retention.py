"""Retention: the sweeper that deletes an ended job's files once its retention_s has passed, and purges its
record after FQ_RECORD_RETENTION_S. The rule is framequeue.jobs.outputs_due / record_due; the store selects
with it (framequeue.jobstore.ports.RetentionStore).

A job's files are everything under its output prefix (`outputs/<id>/`: every attempt's outputs, abandoned
ones included), its failure document (`failures/<id>/`), and its input when the input is its own: an object
under its tenant's uploads prefix (`uploads/<tenant>/`) that no other job whose files are still kept names.
An input elsewhere (an endpoint's InputLocation in another bucket, a key of the development mode) and the
locations an endpoint delivers to (output_uri, failure_uri: the customer's) are never deleted.

Safe with several sweepers at once (one per API process): the files are deleted first (deleting twice is
harmless), then the expiry is claimed with a conditional update, so only one sweeper reports a job; one that
dies in between leaves the job due, and the next pass deletes and claims it. Queued and running jobs are
never selected.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from framequeue.jobs import Job, failure_key, output_prefix
from framequeue.jobstore.ports import RetentionStore
from framequeue.storage.base import ObjectStore
from framequeue.tenants.uploads import upload_prefix

log = logging.getLogger("framequeue.retention")


@dataclass(frozen=True)
class Swept:
    """One job a pass handled: its files deleted (or, in a dry run, that would be) and their size."""

    job_id: str
    keys: tuple[str, ...]
    size_bytes: int
    #: outputs: this pass claimed the expiry; records: this pass deleted the row (False in a dry run)
    done: bool


class Sweeper:
    def __init__(
        self,
        store: RetentionStore,
        objects: ObjectStore,
        *,
        record_retention_s: float,
        batch: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._objects = objects
        self._record_retention_s = record_retention_s
        self._batch = batch
        self._clock = clock

    def files(self, job: Job) -> list[str]:
        """The keys of the job's files that exist now (see the module's docstring for which are its)."""
        failures = failure_key(job.id).rsplit("/", 1)[0] + "/"
        return self._objects.list(output_prefix(job.id)) + self._objects.list(failures) + self._own_input(job)

    def _own_input(self, job: Job) -> list[str]:
        """[the job's input] when it is under its tenant's uploads prefix, no other unswept job names it and it
        is there; else []."""
        key = job.input_key
        own = key.startswith(upload_prefix(job.tenant)) and not self._store.input_in_use(key, job.id)
        return [key] if own and self._objects.size(key) is not None else []

    def expire_outputs(self, *, finished_before_s: float | None = None, dry_run: bool = False) -> list[Swept]:
        """One bounded pass over the jobs whose files are due (and, with finished_before_s, those that ended
        before it, whatever their retention)."""
        now_s = self._clock()
        return [
            swept for job in self._store.outputs_due(now_s, self._batch, finished_before_s)
            if (swept := self._guarded(job, lambda j: self._expire(j, now_s, dry_run))) is not None
        ]

    def purge_records(self, *, finished_before_s: float | None = None, dry_run: bool = False) -> list[Swept]:
        """One bounded pass over the records due (ended FQ_RECORD_RETENTION_S ago, or before
        finished_before_s): their files still kept are deleted, then the row and its outbox rows."""
        if finished_before_s is None:
            if self._record_retention_s <= 0:
                return []
            finished_before_s = self._clock() - self._record_retention_s
        cutoff_s = finished_before_s
        return [
            swept for job in self._store.records_due(cutoff_s, self._batch)
            if (swept := self._guarded(job, lambda j: self._purge(j, cutoff_s, dry_run))) is not None
        ]

    def sweep(self) -> tuple[list[Swept], list[Swept]]:
        """The background pass: expire files, then purge records."""
        return self.expire_outputs(), self.purge_records()

    def run_forever(self, stop: threading.Event, interval_s: float) -> None:
        while not stop.wait(interval_s):
            try:
                expired, purged = self.sweep()
            except Exception:
                log.exception("retention sweep failed")
                continue
            for swept in expired:
                if swept.done:
                    log.info("job %s: files expired (%d objects, %d bytes)", swept.job_id, len(swept.keys),
                             swept.size_bytes)
            if purged:
                log.info("purged %d job records", sum(s.done for s in purged))

    def _expire(self, job: Job, now_s: float, dry_run: bool) -> Swept:
        keys, size_bytes = self._delete(job, dry_run)
        if dry_run:
            return Swept(job.id, keys, size_bytes, False)
        return self._claim(job, keys, size_bytes, now_s)

    def _claim(self, job: Job, keys: tuple[str, ...], size_bytes: int, now_s: float) -> Swept:
        """Claim the expiry of a job whose files are deleted. Two jobs of one upload swept at once by two
        sweepers each saw the other unswept and kept it: the one that claims last sees both swept, and
        deletes it now."""
        done = self._store.mark_outputs_expired(job.id, now_s)
        if done and job.input_key not in keys:
            late = self._own_input(job)
            for key in late:
                size_bytes += self._objects.size(key) or 0
                self._objects.delete(key)
            keys += tuple(late)
        return Swept(job.id, keys, size_bytes, done)

    def _purge(self, job: Job, cutoff_s: float, dry_run: bool) -> Swept:
        keys, size_bytes = ((), 0) if job.outputs_expired_at_s is not None else self._delete(job, dry_run)
        done = not dry_run and self._store.purge_record(job.id, cutoff_s)
        return Swept(job.id, keys, size_bytes, done)

    def _delete(self, job: Job, dry_run: bool) -> tuple[tuple[str, ...], int]:
        keys = self.files(job)
        size_bytes = sum(self._objects.size(k) or 0 for k in keys)
        if not dry_run:
            for key in keys:
                self._objects.delete(key)
        return tuple(keys), size_bytes

    @staticmethod
    def _guarded(job: Job, work: Callable[[Job], Swept]) -> Swept | None:
        """One job's failure (an object store that refuses a delete) leaves it due and the pass goes on."""
        try:
            return work(job)
        except Exception:
            log.exception("job %s: retention failed; it stays due for the next pass", job.id)
            return None
