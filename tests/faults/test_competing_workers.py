"""Several competing workers in separate processes drain 200 jobs: each job succeeds exactly once.

The workers run as separate hosts: each in its own network namespace, reaching the job store and the broker
over its own veth link only (tests/faults/netns.py). Where namespaces cannot be made (not root, no iproute2)
that variant is skipped, with the reason, and the workers run on this host instead; in CI it must run."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.acceptance.deployment import Deployment
from tests.faults import netns

pytestmark = pytest.mark.slow

JOBS = 200
WORKERS = 4


def _stop(dep: Deployment, names: list[str]) -> None:
    names = [name for name in names if name in dep.procs]
    for name in names:
        with contextlib.suppress(ProcessLookupError):
            dep.signal(name, signal.SIGTERM, group=True)
    for name in names:
        try:
            dep.procs[name].wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                dep.signal(name, signal.SIGKILL, group=True)
            dep.procs[name].wait()


def _assert_isolated(dep: Deployment, hosts: netns.SeparateHosts, host: netns.Host, name: str) -> None:
    proc = dep.procs[name]
    deadline = time.monotonic() + 10  # `ip netns exec` enters the namespace, then execs the worker
    while not host.holds(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, (
            f"worker {name} is not running in network namespace {host.netns}:\n{dep.log(name)}")
        time.sleep(0.05)
    bridged = hosts.bridges(host)
    # this machine's loopback services (the API, and the job store and broker behind the bridges) are not
    # reachable from the host's own loopback; the bridges on its link are
    loopback = [("127.0.0.1", dep.port), *(service for _, service in bridged)]
    seen = host.reachable(*loopback, *(address for address, _ in bridged))
    assert seen == {**dict.fromkeys(loopback, False), **{address: True for address, _ in bridged}}, seen


@pytest.fixture(params=["separate-hosts", "same-host"])
def workers(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Start WORKERS workers of the `split` deployment and yield their names: each in a network namespace of
    its own, or (only where namespaces cannot be made, outside CI) all on this host. Requested before `split`,
    so that a skipped variant does not start a deployment."""
    names = [f"w{i}" for i in range(WORKERS)]
    reason = netns.unavailable()
    if request.param == "same-host" and reason is None:
        pytest.skip("network namespaces work here: the separate-hosts variant runs instead")
    if request.param == "separate-hosts" and reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"workers as separate hosts must run in CI: {reason}")
        pytest.skip(reason)
    split: Deployment = request.getfixturevalue("split")  # torn down after this fixture
    if request.param == "same-host":
        for name in names:
            split.start(name, "worker")
        yield names
        return
    with netns.SeparateHosts(WORKERS) as hosts:
        try:
            for name, host in zip(names, hosts.hosts, strict=True):
                urls = {k: hosts.url(host, split.env[f"FQ_{k.upper()}"]) for k in ("database_url", "broker_url")}
                for url in urls.values():  # every service is reached through this host's link
                    assert urlsplit(url).scheme == "sqlite" or urlsplit(url).hostname == host.gateway, url
                split.start(name, "worker", wrap=host.wrap, **urls)
                _assert_isolated(split, hosts, host, name)
            yield names
        finally:
            _stop(split, names)  # before their links and bridges go


def test_competing_workers_drain_200_jobs_each_exactly_once(workers: list[str], split: Deployment,
                                                            tmp_path: Path) -> None:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"x" * 1024)
    key = split.client.upload(payload)["key"]

    def submit(i: int) -> str:
        record = split.client.submit({"pipeline": "noop", "input": {"key": key}, "attributes": {"n": str(i)}})
        return str(record["id"])

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(submit, range(JOBS)))
    assert len(set(ids)) == JOBS

    deadline = time.monotonic() + 240
    while True:
        done = split.client.jobs(status="succeeded", limit=500)["jobs"]
        if len(done) == JOBS or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {j["id"] for j in done} == set(ids)
    assert all(j["attempts"] == 1 for j in done)
    # each job was committed by exactly one worker: count the commits in every worker's log (a worker logs
    # the commit after its ack, so the last lines may trail the records by a moment)
    log_deadline = time.monotonic() + 15
    while True:
        commits: Counter[str] = Counter()
        for name in workers:
            commits.update(re.findall(r"job ([0-9a-f]{32}): succeeded", split.log(name)))
        if set(commits) >= set(ids) or time.monotonic() > log_deadline:
            break
        time.sleep(0.2)
    assert set(commits) == set(ids) and set(commits.values()) == {1}
    busy = sum(1 for name in workers if ": succeeded" in split.log(name))
    assert busy >= 2, "the jobs should be shared between competing workers"
