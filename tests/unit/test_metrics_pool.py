"""PoolMetrics: worker processes in prometheus_client's multiprocess mode, merged for the API's /metrics and
the pool's metrics port, with the names and labels a standalone worker exports. Real processes: the mode is
chosen when a process imports prometheus_client, so it cannot be switched on inside this one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from framequeue.brokers.base import QueueStats
from framequeue.metrics import PoolMetrics, WorkerMetrics, api_registry

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
SUCCEEDED = ("framequeue_jobs_total", (("outcome", "succeeded"),))

#: a worker's share of the metrics: JOBS succeeded jobs, busy when it ran two, one processing time, 0.5 s
#: of decode; then it waits for its stdin to close
WORKER = """
import sys
from framequeue.metrics import WorkerMetrics
jobs = int(sys.argv[1])
m = WorkerMetrics()
m.up.set(1)
m.busy.set(1 if jobs == 2 else 0)
for _ in range(jobs):
    m.jobs.labels("succeeded").inc()
m.processing_s.observe(0.3)
m.stage_s.labels("decode").inc(0.5)
print("ready", flush=True)
sys.stdin.read()
"""


def _parse(body: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def _samples(registry: object) -> Samples:
    return _parse(generate_latest(registry).decode())  # type: ignore[arg-type]


@pytest.fixture
def pool(tmp_path: Path) -> PoolMetrics:
    metrics = PoolMetrics(tmp_path / "metrics")
    metrics.reset()
    return metrics


@pytest.fixture
def start_worker(pool: PoolMetrics) -> Iterator[object]:
    procs: list[subprocess.Popen[str]] = []

    def start(jobs: int) -> subprocess.Popen[str]:
        env = {**os.environ, **pool.env()}
        proc = subprocess.Popen([sys.executable, "-c", WORKER, str(jobs)], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for proc in procs:
        proc.communicate(timeout=10)  # closes stdin: the worker ends


def test_reset_drops_an_earlier_runs_files(pool: PoolMetrics) -> None:
    (pool.path / "counter_4242.db").write_bytes(b"left by a run killed -9")
    pool.reset()
    assert list(pool.path.iterdir()) == []
    assert _samples(pool.registry()) == {}


def test_workers_are_summed_and_a_killed_one_keeps_its_counts_but_not_its_gauges(
    pool: PoolMetrics, start_worker: object
) -> None:
    start = start_worker
    one, two = start(1), start(2)  # type: ignore[operator]
    got = _samples(pool.registry())
    assert got[("framequeue_worker_up", ())] == 2
    assert got[("framequeue_worker_busy", ())] == 1
    assert got[SUCCEEDED] == 3
    assert got[("framequeue_processing_seconds_count", ())] == 2
    assert got[("framequeue_stage_seconds_total", (("stage", "decode"),))] == 1.0

    os.kill(two.pid, signal.SIGKILL)
    two.wait(10)
    # gone from the gauges once the process no longer exists, before any process_dead (a supervisor
    # killed -9, or the autoscaler, never calls it) ...
    got = _samples(pool.registry())
    assert got[("framequeue_worker_up", ())] == 1
    assert got[("framequeue_worker_busy", ())] == 0
    assert got[SUCCEEDED] == 3  # counters never go back
    pool.process_dead(two.pid)  # ... and process_dead removes the files themselves
    assert not list(pool.path.glob(f"gauge_live*_{two.pid}.db"))
    assert _samples(pool.registry()) == got

    start(1)  # the pool's replacement
    got = _samples(pool.registry())
    assert got[("framequeue_worker_up", ())] == 2
    assert got[SUCCEEDED] == 4
    assert one.poll() is None


def test_a_file_a_starting_worker_has_not_sized_yet_does_not_fail_the_scrape(
    pool: PoolMetrics, start_worker: object
) -> None:
    start_worker(1)  # type: ignore[operator]
    (pool.path / "counter_4242.db").touch()  # the instant between the library's open() and truncate()
    got = _samples(pool.registry())
    assert got[SUCCEEDED] == 1 and got[("framequeue_worker_up", ())] == 1


def test_merged_series_have_a_standalone_workers_names_and_labels(pool: PoolMetrics, start_worker: object) -> None:
    start_worker(2)  # type: ignore[operator]
    alone = WorkerMetrics()  # this process is not in multiprocess mode: a standalone worker
    alone.up.set(1)
    alone.jobs.labels("succeeded").inc()
    alone.stage_s.labels("decode").inc(0.5)
    standalone = {key for key in _samples(alone.registry) if not key[0].endswith("_created")}
    assert set(_samples(pool.registry())) == standalone


def test_the_api_shows_the_queue_and_its_workers(pool: PoolMetrics, start_worker: object) -> None:
    start_worker(1)  # type: ignore[operator]
    got = _samples(api_registry(lambda: QueueStats(ready=2, in_flight=1), pool.path))
    assert got[("framequeue_backlog_jobs", ())] == 2
    assert got[("framequeue_worker_up", ())] == 1
    assert got[SUCCEEDED] == 1
    assert ("framequeue_worker_up", ()) not in _samples(api_registry(lambda: QueueStats(ready=2, in_flight=1)))


def test_the_pools_port_serves_every_worker_and_stops(pool: PoolMetrics, start_worker: object) -> None:
    start_worker(1), start_worker(2)  # type: ignore[operator]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stop = pool.serve(port)
    try:
        got = _parse(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
        assert got[("framequeue_worker_up", ())] == 2
        assert got[SUCCEEDED] == 3
    finally:
        stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
