"""framequeue.live, the change feed of the event streams, below HTTP: event ids, each record once, resume
after a Last-Event-ID without repeats, tenants apart, `Prefer: wait`. A real SQLite job store; the test plays
the worker by writing to the store as a worker does (claim, progress, renew, finish)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream

from framequeue import live
from framequeue.config import Settings
from framequeue.errors import InvalidParams, JobNotFound
from framequeue.jobs import JobProgress, JobStatus
from framequeue.runtime import Runtime, open_runtime
from framequeue.service import SubmitRequest
from framequeue.tenants.auth import Principal

ALICE = Principal("alice", "submit", "k1")
BOB = Principal("bob", "submit", "k2")
FAST_S = 0.01


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    name = uuid.uuid4().hex
    runtime = open_runtime(Settings(home=tmp_path, storage_url=f"memory://{name}",
                                    broker_url=f"memory://{name}").resolved())
    yield runtime
    runtime.close()


def submit(rt: Runtime, caller: Principal) -> str:
    key = f"uploads/{caller.tenant}/{uuid.uuid4().hex}/clip.mp4"
    rt.objects.put(key, b"x" * 10)
    return str(rt.service.submit(SubmitRequest(pipeline="noop", input_key=key), caller).record["id"])


ENDED = "ended"


@asynccontextmanager
async def pumped(changes: AsyncIterator[live.Change]) -> AsyncIterator[MemoryObjectReceiveStream[live.Change]]:
    """The changes, read by a task of their own (a test may stop waiting on one without ending the stream)."""
    send, receive = anyio.create_memory_object_stream[live.Change](100)

    async def pump() -> None:
        async with send:
            async for change in changes:
                await send.send(change)

    async with receive, anyio.create_task_group() as tg:
        tg.start_soon(pump)
        yield receive
        tg.cancel_scope.cancel()


async def within(stream: MemoryObjectReceiveStream[live.Change], seconds: float = 2.0) -> live.Change | str | None:
    """The stream's next change; None when none comes within `seconds`; ENDED when the stream ended."""
    with anyio.move_on_after(seconds):
        try:
            return await stream.receive()
        except anyio.EndOfStream:
            return ENDED
    return None


async def next_change(stream: MemoryObjectReceiveStream[live.Change]) -> live.Change:
    change = await within(stream)
    assert isinstance(change, live.Change), change
    return change


def test_event_ids_round_trip_and_junk_is_no_resume() -> None:
    eid = live.EventId(1764856800123, "0123456789ab")
    assert str(eid) == "1764856800123.0123456789ab"
    assert live.parse_event_id(str(eid)) == eid
    for junk in (None, "", "abc", "1.2", "12.0123456789AB", "12.0123456789abc", "-1.0123456789ab"):
        assert live.parse_event_id(junk) is None


def test_the_digest_is_of_the_content_not_the_key_order() -> None:
    a = {"id": "j", "status": "running", "progress": {"frames_done": 1, "fps": 2.0}}
    b = {"progress": {"fps": 2.0, "frames_done": 1}, "status": "running", "id": "j"}
    assert live.digest(a) == live.digest(b)
    assert live.digest(a) != live.digest({**a, "progress": {"frames_done": 2, "fps": 2.0}})


def test_status_filters_parse_and_unknown_statuses_are_refused() -> None:
    assert live.parse_statuses(None) is None
    assert live.parse_statuses("running, queued") == {JobStatus.RUNNING, JobStatus.QUEUED}
    with pytest.raises(InvalidParams, match="comma-separated list of queued"):
        live.parse_statuses("running,done")


def test_a_job_stream_sends_each_record_once_and_ends_with_the_terminal_one(rt: Runtime) -> None:
    job_id = submit(rt, ALICE)

    async def scenario() -> list[live.Change]:
        async with pumped(live.follow_job(rt.service, job_id, ALICE, poll_s=FAST_S)) as stream:
            got = [await next_change(stream)]
            job = rt.store.claim(job_id, "w1", 30, time.time())
            assert job is not None
            got.append(await next_change(stream))
            rt.store.report_progress(job_id, job.lease_token, JobProgress(5, 10, 20.0, 0.25), time.time())
            got.append(await next_change(stream))
            rt.store.renew(job_id, job.lease_token, 30, time.time() + 1)  # moves updated_at, nothing visible
            assert await within(stream, 0.3) is None
            rt.store.finish(job_id, job.lease_token, JobStatus.SUCCEEDED, time.time(),
                            progress=JobProgress(10, 10, 20.0, 0.0))
            got.append(await next_change(stream))
            assert await within(stream) == ENDED
            return got

    changes = anyio.run(scenario)
    assert [(c.event, c.record["status"]) for c in changes] == [
        ("status", "queued"), ("status", "running"), ("progress", "running"), ("end", "succeeded")]
    assert [c.record["progress"]["frames_done"] for c in changes] == [0, 0, 5, 10]
    assert changes[2].record["progress"] == {"frames_done": 5, "frames_total": 10, "percent": 50.0, "fps": 20.0,
                                             "eta_s": 0.2}
    assert len({str(c.id) for c in changes}) == 4
    assert all(live.parse_event_id(str(c.id)) == c.id for c in changes)
    assert changes[-1].terminal and not changes[0].terminal


def test_a_resumed_job_stream_repeats_nothing_the_client_has(rt: Runtime) -> None:
    job_id = submit(rt, ALICE)
    job = rt.store.claim(job_id, "w1", 30, time.time())
    assert job is not None
    rt.store.report_progress(job_id, job.lease_token, JobProgress(3, 10, 10.0, 0.7), time.time())

    async def scenario() -> tuple[live.Change, live.Change | str | None, live.Change, live.Change]:
        first = await live.current(rt.service, job_id, ALICE)
        async with pumped(live.follow_job(rt.service, job_id, ALICE, first.id, poll_s=FAST_S)) as resumed:
            nothing = await within(resumed, 0.3)  # the client has the current record
            rt.store.report_progress(job_id, job.lease_token, JobProgress(7, 10, 10.0, 0.3), time.time())
            newer = await next_change(resumed)
            rt.store.finish(job_id, job.lease_token, JobStatus.FAILED, time.time())
            end = await next_change(resumed)
            assert await within(resumed) == ENDED
        return first, nothing, newer, end

    first, nothing, newer, end = anyio.run(scenario)
    assert first.record["progress"]["frames_done"] == 3
    assert nothing is None
    assert (newer.event, newer.record["progress"]["frames_done"]) == ("progress", 7)  # still running, as it had
    assert (end.event, end.record["status"]) == ("end", "failed")

    async def after_the_end() -> list[live.Change]:
        return [c async for c in live.follow_job(rt.service, job_id, ALICE, end.id, poll_s=FAST_S)]

    assert anyio.run(after_the_end) == []  # the route answers 204 here


def test_another_tenants_job_is_missing(rt: Runtime) -> None:
    job_id = submit(rt, ALICE)

    async def scenario() -> None:
        async for _ in live.follow_job(rt.service, job_id, BOB, poll_s=FAST_S):
            pass

    with pytest.raises(JobNotFound, match="no such job"):
        anyio.run(scenario)


def test_a_tenant_stream_sees_its_own_jobs_change_and_no_one_elses(rt: Runtime) -> None:
    before = submit(rt, ALICE)  # stood when the stream began: no event until it changes

    async def scenario() -> list[tuple[str, str, str]]:
        async with pumped(live.follow_tenant(rt.service, ALICE, poll_s=FAST_S)) as stream:
            assert await within(stream, 0.3) is None
            submit(rt, BOB)
            mine = submit(rt, ALICE)
            seen = [await next_change(stream)]
            job = rt.store.claim(mine, "w1", 30, time.time())
            assert job is not None
            seen.append(await next_change(stream))
            rt.store.finish(mine, job.lease_token, JobStatus.SUCCEEDED, time.time())
            seen.append(await next_change(stream))
            rt.store.cancel(before, time.time())
            seen.append(await next_change(stream))
            assert await within(stream, 0.3) is None
        return [(c.record["id"], c.event, c.record["status"]) for c in seen]

    seen = anyio.run(scenario)
    mine = seen[0][0]
    assert mine != before
    assert seen == [(mine, "status", "queued"), (mine, "status", "running"), (mine, "end", "succeeded"),
                    (before, "end", "cancelled")]


def test_a_filtered_tenant_stream_sees_a_job_enter_and_leave_its_status(rt: Runtime) -> None:
    async def scenario() -> list[tuple[str, str]]:
        running = frozenset({JobStatus.RUNNING})
        async with pumped(live.follow_tenant(rt.service, ALICE, running, poll_s=FAST_S)) as stream:
            await anyio.sleep(0.05)
            job_id = submit(rt, ALICE)
            assert await within(stream, 0.3) is None  # queued: not this view's
            job = rt.store.claim(job_id, "w1", 30, time.time())
            assert job is not None
            seen = [await next_change(stream)]
            rt.store.finish(job_id, job.lease_token, JobStatus.SUCCEEDED, time.time())
            seen.append(await next_change(stream))  # it left the view
        return [(c.event, c.record["status"]) for c in seen]

    assert anyio.run(scenario) == [("status", "running"), ("end", "succeeded")]


def test_a_resumed_tenant_stream_sends_what_changed_after_the_id_once(rt: Runtime) -> None:
    old = submit(rt, ALICE)

    async def scenario() -> tuple[str, list[str]]:
        cursor = (await live.current(rt.service, old, ALICE)).id
        await anyio.sleep(0.01)
        new = submit(rt, ALICE)
        async with pumped(live.follow_tenant(rt.service, ALICE, last=cursor, poll_s=FAST_S)) as stream:
            got = [(await next_change(stream)).record["id"]]
            assert await within(stream, 0.3) is None
        return new, got

    new, got = anyio.run(scenario)
    assert got == [new]


def test_wait_for_end_answers_the_terminal_record_or_none(rt: Runtime) -> None:
    job_id = submit(rt, ALICE)

    async def scenario() -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        missed = await live.wait_for_end(rt.service, job_id, ALICE, 0.3)
        rt.store.cancel(job_id, time.time())
        return missed, await live.wait_for_end(rt.service, job_id, ALICE, 5)

    missed, ended = anyio.run(scenario)
    assert missed is None
    assert ended is not None and ended["status"] == "cancelled"
