"""A long video's split in a SQL job store: the parent's segment jobs created and the parent parked, in one
transaction fenced by the parent's lease token; and the segments read back. What the segments' ends do to
their parent is in cascade.py."""

from __future__ import annotations

from collections.abc import Sequence

from framequeue.errors import IdempotencyConflict, InvalidTransition
from framequeue.jobs import CANCELLED_BY_REQUEST, Job, JobStatus, Outcome, attempt_ended
from framequeue.jobstore.sql import transitions
from framequeue.jobstore.sql.base import SqlBase
from framequeue.jobstore.sql.dialect import Tx
from framequeue.jobstore.sql.jobs import _insert


class SqlSegments(SqlBase):
    def split(self, parent_id: str, token: int, segments: Sequence[Job], now_s: float) -> Job:
        def work(tx: Tx) -> Job:
            parent = transitions.fenced(tx, parent_id, token)
            if parent.segments_total is not None or parent.parent_id is not None or not segments:
                raise InvalidTransition(f"job {parent_id} cannot be split (split already, a segment, or no segments)")
            if parent.cancel_requested:
                return transitions.end(tx, self._render, parent, JobStatus.CANCELLED, now_s, CANCELLED_BY_REQUEST)
            for index, segment in enumerate(segments):
                assert segment.parent_id == parent_id and segment.segment_index == index
                made = _insert(tx, segment, None)
                assert not isinstance(made, IdempotencyConflict)  # a segment has no idempotency key
                tx.run("UPDATE {s}.jobs SET parent_id = %s, segment_index = %s WHERE id = %s",
                       (parent_id, index, segment.id))
            history = attempt_ended(parent.attempt_history, Outcome.SPLIT, now_s)
            # a new token: the splitting worker's heartbeat can no longer give the parked parent a lease
            row = tx.one(
                """UPDATE {s}.jobs SET segments_total = %s, segments_done = 0, lease_owner = NULL,
                   lease_deadline_s = NULL, lease_token = lease_token + 1, attempts = attempts - 1,
                   updated_at_s = %s, attempt_history = %s WHERE id = %s RETURNING *""",
                (len(segments), now_s, transitions.history_json(tx, history), parent_id),
            )
            assert row is not None
            return transitions.job(tx, row)

        return self._engine.write(work)

    def segments(self, parent_id: str) -> list[Job]:
        return self._engine.read(lambda tx: [
            transitions.job(tx, r)
            for r in tx.all("SELECT * FROM {s}.jobs WHERE parent_id = %s ORDER BY segment_index", (parent_id,))
        ])
