"""Per-tenant fair share (JobStateStore.claim_fair, framequeue.worker.claiming), on every backend: among the
waiting jobs of one lane, workers serve tenants in weighted turns, so one tenant's backlog does not hold back
another's next job; lanes come first as before, and nothing is lost or run twice.

The store cases run on every job store; the deployment cases on every broker, each paired with the job store it
runs with in production (tests/contract/backends.DEPLOYMENTS) and memory:// with memory://, through the same
claim the worker makes (claim_for), each claimed job then ended as a worker ends it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from framequeue.config import Settings
from framequeue.jobs import Job, JobStatus, Priority
from framequeue.jobstore import JobStore
from framequeue.runtime import Runtime, open_runtime
from framequeue.worker.claiming import claim_for
from tests.contract.backends import DEPLOYMENTS, IMPLEMENTED, STORES, cleanup
from tests.contract.conftest import LEASE_S, T0, new_job

EQUAL: dict[str, float] = {}


def queue(store: JobStore, tenant: str, n: int, *, at_s: float = T0, published: bool = True,
          priority: Priority = Priority.NORMAL) -> list[str]:
    """n queued jobs of a tenant, created in order from at_s, their messages confirmed unless told."""
    jobs = [new_job(f"{tenant}-{i:04d}", tenant=tenant, created_at_s=at_s + i * 1e-3, priority=priority)
            for i in range(n)]
    store.create_many([(job, None) for job in jobs])
    if published:
        store.mark_published_many([job.id for job in jobs], at_s)
    return [job.id for job in jobs]


def claimed_id(store: JobStore, job_id: str, weights: dict[str, float] = EQUAL, now_s: float = T0 + 10) -> str | None:
    job = store.claim_fair(job_id, "worker-a", LEASE_S, now_s, weights)
    return None if job is None else job.id


# -- the store's choice, every job store --------------------------------------------------------------------


def test_one_tenant_alone_gets_the_job_its_message_names(store: JobStore) -> None:
    ids = queue(store, "a", 5)
    assert [claimed_id(store, job_id) for job_id in reversed(ids)] == list(reversed(ids))


def test_another_tenants_turn_takes_its_oldest_waiting_job(store: JobStore) -> None:
    a = queue(store, "a", 5)
    b = queue(store, "b", 4, at_s=T0 + 1)
    assert claimed_id(store, a[0]) == a[0]  # a tie: the job in hand
    assert claimed_id(store, a[1]) == b[0]  # b's turn: its oldest
    assert store.get(a[1]).status is JobStatus.QUEUED  # the message's own job still waits
    assert claimed_id(store, a[1]) == a[1]
    assert claimed_id(store, b[2]) == b[2]  # b's turn with b's message: the job in hand, as the broker ordered
    assert claimed_id(store, b[1]) == b[1]  # a tie
    assert claimed_id(store, b[3]) == a[2]  # a's turn: a's oldest


def test_a_job_not_claimable_is_none_whoever_waits(store: JobStore) -> None:
    a = queue(store, "a", 2)
    queue(store, "b", 2, at_s=T0 + 1)
    assert claimed_id(store, a[0]) == a[0]
    assert claimed_id(store, a[0]) is None  # leased: the message is spent, as with `claim`
    assert claimed_id(store, "no-such-job") is None


def test_jobs_whose_message_is_not_confirmed_are_not_taken(store: JobStore) -> None:
    a = queue(store, "a", 3)
    queue(store, "b", 3, at_s=T0 + 1, published=False)  # a submit between the row and the publish
    assert [claimed_id(store, job_id) for job_id in a] == a


def test_the_turn_stays_within_the_lane_of_the_message(store: JobStore) -> None:
    high = queue(store, "a", 3, priority=Priority.HIGH)
    queue(store, "b", 3, at_s=T0 + 1, priority=Priority.LOW)
    assert [claimed_id(store, job_id) for job_id in high] == high  # b waits in another lane
    low = queue(store, "c", 2, at_s=T0 + 2, priority=Priority.LOW)
    assert store.get(claimed_id(store, low[0]) or "").priority is Priority.LOW


def test_weights_set_the_shares(store: JobStore) -> None:
    a = queue(store, "a", 30)
    b = queue(store, "b", 30, at_s=T0 + 1)
    waiting = {"a": list(a), "b": list(b)}
    served: list[str] = []
    for _ in range(20):
        in_hand = waiting["a"][0]  # always a's message: the turns alone decide
        got = claimed_id(store, in_hand, {"a": 3.0})
        assert got is not None
        tenant = got.split("-")[0]
        waiting[tenant].remove(got)
        served.append(tenant)
    assert served.count("b") == 5


def test_a_tenant_back_from_idle_gets_no_burst(store: JobStore) -> None:
    a = queue(store, "a", 40)
    b = queue(store, "b", 20, at_s=T0 + 1)
    for job_id in b[:10]:  # a and b take turns for a while
        claimed_id(store, job_id)
    queue(store, "c", 10, at_s=T0 + 2)  # c shows up now, never served in this lane
    served = [(claimed_id(store, a[-1 - i]) or "").split("-")[0] for i in range(9)]
    assert Counter(served) == {"a": 3, "b": 3, "c": 3}


# -- through the worker's claim, every broker ----------------------------------------------------------------


def _deployment_params() -> list[str]:
    return [*sorted(n for n in DEPLOYMENTS if n in IMPLEMENTED), "memory"]


@pytest.fixture(params=_deployment_params())
def make_runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """Runtimes (an API's or a worker's) on one fresh deployment; the settings' other fields as given."""
    if request.param == "memory":
        store_url, queue_url = STORES["memory"](tmp_path), STORES["memory"](tmp_path)
    else:
        make_store, make_queue = DEPLOYMENTS[request.param]
        store_url, queue_url = make_store(tmp_path), make_queue(tmp_path)
    opened: list[Runtime] = []

    def make(**settings: object) -> Runtime:
        rt = open_runtime(Settings(home=tmp_path, database_url=store_url, broker_url=queue_url,
                                   storage_url=(tmp_path / "objects").as_uri(), webhook_secret="whsec_dGVzdA==",
                                   **settings).resolved())  # type: ignore[arg-type]
        opened.append(rt)
        return rt

    yield make
    for rt in opened:
        rt.close()
    cleanup(store_url)
    cleanup(queue_url)


def submit(rt: Runtime, tenant: str, n: int, priority: Priority = Priority.NORMAL) -> list[str]:
    """What a batch submit does: the rows in one write, their messages in one publish, then confirmed."""
    now_s = time.time()
    jobs = [replace(new_job(f"{tenant}-{i:04d}", tenant=tenant, priority=priority), created_at_s=now_s + i * 1e-4,
                    updated_at_s=now_s, expires_at_s=now_s + 3600) for i in range(n)]
    rt.store.create_many([(job, None) for job in jobs])
    ids = [job.id for job in jobs]
    rt.broker.publish_many(ids, [priority] * n)
    rt.store.mark_published_many(ids, now_s)
    return ids


def work(rt: Runtime, weights: dict[str, float], until: Callable[[list[str]], bool], owner: str = "w",
         finished: list[str] | None = None, lock: threading.Lock | None = None) -> list[str]:
    """A worker's loop with jobs that succeed at once: receive, claim (claim_for), end the job, then ack the
    message (or nack it, as Claimed.spent says); stops when `until(finished)` or when no message comes."""
    finished = [] if finished is None else finished
    lock = lock or threading.Lock()
    while True:
        with lock:
            if until(finished):
                return finished
        message = rt.broker.receive(visibility_s=60, wait_s=2.0)
        if message is None:
            return finished
        claimed = claim_for(rt, message, owner, LEASE_S, time.time(), weights)
        if claimed is None:
            rt.broker.ack(message)
            continue
        job: Job = claimed.job
        rt.store.finish(job.id, job.lease_token, JobStatus.SUCCEEDED, time.time())
        with lock:
            finished.append(job.id)
        if claimed.spent:
            rt.broker.ack(message)
        else:
            rt.broker.nack(message)


def test_a_small_backlog_finishes_before_a_large_ones_30th_job(make_runtime: Callable[..., Runtime]) -> None:
    rt = make_runtime()
    a = submit(rt, "a", 1000)
    b = submit(rt, "b", 10)
    finished = work(rt, EQUAL, lambda done: set(b) <= set(done))
    assert set(b) <= set(finished)
    a_done = [job_id for job_id in finished if job_id.startswith("a-")]
    assert len(a_done) < 30, f"b's 10 finished only after a's {len(a_done)}th"
    assert len(finished) == len(set(finished))
    assert all(rt.store.get(job_id).status is JobStatus.QUEUED for job_id in set(a) - set(a_done))


def test_the_share_follows_the_weights(make_runtime: Callable[..., Runtime]) -> None:
    rt = make_runtime()
    submit(rt, "a", 200)
    submit(rt, "b", 200)
    finished = work(rt, {"a": 3.0, "b": 1.0}, lambda done: len(done) >= 40)
    share = Counter(job_id.split("-")[0] for job_id in finished)
    assert abs(share["a"] - 30) <= 2, share


def test_lanes_still_come_first(make_runtime: Callable[..., Runtime]) -> None:
    rt = make_runtime()
    submit(rt, "a", 100, Priority.LOW)
    high = submit(rt, "b", 5, Priority.HIGH)
    finished = work(rt, EQUAL, lambda done: len(done) >= 5)
    assert finished == high


def test_competing_workers_lose_nothing_and_run_nothing_twice(make_runtime: Callable[..., Runtime]) -> None:
    api = make_runtime()
    ids = submit(api, "a", 60) + submit(api, "b", 30) + submit(api, "c", 10, Priority.HIGH)
    finished: list[str] = []
    lock = threading.Lock()
    workers = [
        threading.Thread(target=work, args=(make_runtime(), EQUAL, lambda done: len(done) >= len(ids), f"w{i}",
                                            finished, lock))
        for i in range(3)
    ]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    assert sorted(finished) == sorted(ids)
    assert all(api.store.get(job_id).attempts == 1 for job_id in ids)
    b_at = [i for i, job_id in enumerate(finished) if job_id.startswith("b-")]
    assert b_at[-1] < 80, "b's backlog was held back behind a's"


def test_a_worker_killed_running_another_tenants_job_loses_nothing(make_runtime: Callable[..., Runtime]) -> None:
    api, dying = make_runtime(), make_runtime()
    ids = submit(api, "a", 3) + submit(api, "b", 1)
    first = dying.broker.receive(visibility_s=1.0, wait_s=5.0)
    assert first is not None and first.job_id == "a-0000"
    claimed = claim_for(dying, first, "dying", 1.0, time.time(), EQUAL)
    assert claimed is not None and claimed.job.id == "a-0000"
    dying.store.finish("a-0000", claimed.job.lease_token, JobStatus.SUCCEEDED, time.time())
    dying.broker.ack(first)
    held = dying.broker.receive(visibility_s=1.0, wait_s=5.0)
    assert held is not None and held.job_id == "a-0001"
    swapped = claim_for(dying, held, "dying", 1.0, time.time(), EQUAL)
    assert swapped is not None and swapped.job.id == "b-0000"  # b's turn: a-0001 was published again
    dying.broker.close()  # killed mid-run: no end, no ack (RabbitMQ hands the message back on the close)
    time.sleep(1.5)
    assert api.service.reap() == ["b-0000"]  # its lease ran out: queued and published again
    finished = work(api, EQUAL, lambda done: len(done) >= 3)
    assert sorted(finished) == sorted(set(ids) - {"a-0000"})
    assert {job_id: api.store.get(job_id).status for job_id in ids} == dict.fromkeys(ids, JobStatus.SUCCEEDED)
    assert api.store.get("b-0000").attempts == 2
    assert api.store.get("a-0001").attempts == 1
