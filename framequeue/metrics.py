"""Prometheus metrics: what the autoscaler, the dashboards and the alerts read. Units are in the names
(`_seconds`, `_jobs`, `_bytes`), help texts say what is counted.

- The API exports the queue as the broker sees it, read on each scrape (cached for a second so several
  scrapers cost one look): backlog (waiting = ready + delayed), in flight, dead, age of the oldest
  waiting job, and "backlog without capacity" (jobs waiting while none is in flight: the signal that
  wakes a fleet scaled to zero).
- The API exports the job store's backlog per lane (`priority`) and tenant, read on each scrape (cached the
  same way, one grouped read): queued jobs per lane and tenant, with the tenants bounded to the
  FQ_METRICS_TOP_TENANTS with the most outstanding jobs and the rest summed as tenant "other"; outstanding
  (queued + running) jobs and the oldest queued job's age per lane, every lane always present: what a worker
  group of some lanes scales on (deploy/helm: workerGroups).
- Each worker exports its own counters and histograms: jobs processed by outcome, time in backlog,
  processing time, per-stage time, model latency; `framequeue_worker_up` (1 per worker process: the
  worker count is its sum) and `framequeue_worker_busy`.
- `serve-models` exports its queue time and batch sizes (framequeue.inference.metrics).

Under `framequeue up` the workers are processes of their own: they write their metrics into one folder
(`PoolMetrics`, prometheus_client's multiprocess mode), and the API's /metrics (and the pool's
FQ_METRICS_PORT, when set) read them all, next to the queue's.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from framequeue.brokers.base import QueueStats
from framequeue.jobs import PRIORITIES, LaneBacklog, Priority

#: seconds; long videos make long tails
DURATION_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: the pipeline stats (RunResult.stats, seconds) exported as stages
STAGES = ("fetch", "decode", "preprocess", "infer", "postprocess", "render", "encode", "upload")
STATS_CACHE_S = 1.0


class QueueCollector(Collector):
    """The queue's state, read from the broker when Prometheus scrapes."""

    def __init__(self, stats: Callable[[], QueueStats], clock: Callable[[], float] = time.monotonic) -> None:
        self._stats = stats
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, QueueStats | None] = (-1e9, None)

    def _read(self) -> QueueStats | None:
        with self._lock:
            at, cached = self._cached
            if self._clock() - at < STATS_CACHE_S:
                return cached
            try:
                fresh: QueueStats | None = self._stats()
            except Exception:  # an unreachable broker: framequeue_queue_up 0, no numbers
                fresh = None
            self._cached = (self._clock(), fresh)
            return fresh

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self._read()
        yield GaugeMetricFamily("framequeue_queue_up", "1 when the broker answered the last look at the queue",
                                value=0 if stats is None else 1)
        if stats is None:
            return
        waiting = stats.ready + stats.delayed
        yield GaugeMetricFamily("framequeue_backlog_jobs", "Jobs waiting in the queue (ready + delayed retries)",
                                value=waiting)
        if stats.waiting_by_priority is not None:
            # its own name: a priority label on framequeue_backlog_jobs would double what sum() over it reads
            lanes = GaugeMetricFamily("framequeue_backlog_by_priority_jobs",
                                      "Jobs waiting in the queue (ready + delayed retries) per lane",
                                      labels=["priority"])
            for lane, count in stats.waiting_by_priority.items():
                lanes.add_metric([lane.value], count)
            yield lanes
        yield GaugeMetricFamily("framequeue_inflight_jobs", "Jobs received by a worker and not yet acked",
                                value=stats.in_flight)
        yield GaugeMetricFamily("framequeue_outstanding_jobs", "Jobs waiting plus in flight: what scaling tracks",
                                value=waiting + stats.in_flight)
        yield GaugeMetricFamily("framequeue_dead_letter_jobs", "Jobs the broker gave up on (delivery limit)",
                                value=stats.dead)
        yield GaugeMetricFamily(
            "framequeue_backlog_without_capacity_jobs",
            "Jobs waiting while none is in flight (no worker is taking work: wake the fleet)",
            value=waiting if stats.in_flight == 0 else 0,
        )
        if stats.oldest_ready_age_s is not None:
            yield GaugeMetricFamily("framequeue_oldest_waiting_age_seconds",
                                    "Seconds the oldest ready job has waited (0 when none)",
                                    value=stats.oldest_ready_age_s)


#: the tenant label of the tenants past the top N
OTHER_TENANTS = "other"


@dataclass(frozen=True)
class LaneSeries:
    """The lane gauges' values, from one look at the job store (lane_series)."""

    #: (priority, tenant) -> queued jobs; tenants past the top N summed under OTHER_TENANTS
    queued: dict[tuple[Priority, str], int]
    #: priority -> queued + running jobs, every lane
    outstanding: dict[Priority, int]
    #: priority -> seconds the oldest queued job has waited (0 when none), every lane
    oldest_age_s: dict[Priority, float]


def lane_series(backlog: Sequence[LaneBacklog], top_tenants: int, now_s: float) -> LaneSeries:
    """The gauges' values: the `top_tenants` tenants with the most outstanding jobs (ties by name) keep their
    label, the rest count as OTHER_TENANTS, so the series stay at most 3 x (top_tenants + 1)."""
    load: collections.Counter[str] = collections.Counter()
    for entry in backlog:
        load[entry.tenant] += entry.queued + entry.running
    kept = {t for t, _ in sorted(load.items(), key=lambda item: (-item[1], item[0]))[:max(0, top_tenants)]}
    queued: collections.Counter[tuple[Priority, str]] = collections.Counter()
    outstanding = dict.fromkeys(PRIORITIES, 0)
    oldest_age_s = dict.fromkeys(PRIORITIES, 0.0)
    for entry in backlog:
        if entry.queued:
            queued[(entry.priority, entry.tenant if entry.tenant in kept else OTHER_TENANTS)] += entry.queued
        outstanding[entry.priority] += entry.queued + entry.running
        if entry.oldest_queued_at_s is not None:
            oldest_age_s[entry.priority] = max(oldest_age_s[entry.priority], now_s - entry.oldest_queued_at_s)
    return LaneSeries(dict(queued), outstanding, oldest_age_s)


class LaneCollector(Collector):
    """The job store's backlog per lane and tenant (JobStateStore.lane_backlog), read when Prometheus scrapes."""

    def __init__(self, backlog: Callable[[], Sequence[LaneBacklog]], top_tenants: int,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time) -> None:
        self._backlog, self._top_tenants = backlog, top_tenants
        self._clock, self._wall_clock = clock, wall_clock
        self._lock = threading.Lock()
        self._cached: tuple[float, LaneSeries | None] = (-1e9, None)

    def _read(self) -> LaneSeries | None:
        with self._lock:
            at, cached = self._cached
            if self._clock() - at < STATS_CACHE_S:
                return cached
            try:
                fresh: LaneSeries | None = lane_series(self._backlog(), self._top_tenants, self._wall_clock())
            except Exception:  # an unreachable job store: framequeue_lanes_up 0, no numbers
                fresh = None
            self._cached = (self._clock(), fresh)
            return fresh

    def collect(self) -> Iterator[GaugeMetricFamily]:
        series = self._read()
        yield GaugeMetricFamily("framequeue_lanes_up", "1 when the job store answered the last look at the lanes",
                                value=0 if series is None else 1)
        if series is None:
            return
        queued = GaugeMetricFamily(
            "framequeue_backlog_by_tenant_jobs",
            "Jobs queued in the job store per lane and tenant (the top FQ_METRICS_TOP_TENANTS tenants, the rest "
            "as tenant=\"other\")", labels=["priority", "tenant"])
        for (lane, tenant), count in sorted(series.queued.items()):
            queued.add_metric([lane.value, tenant], count)
        yield queued
        outstanding = GaugeMetricFamily(
            "framequeue_outstanding_by_priority_jobs",
            "Jobs queued or running per lane, from the job store: what a worker group of some lanes scales on",
            labels=["priority"])
        oldest = GaugeMetricFamily("framequeue_oldest_queued_by_priority_age_seconds",
                                   "Seconds the oldest queued job of each lane has waited (0 when none)",
                                   labels=["priority"])
        for lane in PRIORITIES:
            outstanding.add_metric([lane.value], series.outstanding[lane])
            oldest.add_metric([lane.value], series.oldest_age_s[lane])
        yield outstanding
        yield oldest


def api_registry(stats: Callable[[], QueueStats], workers_dir: Path | None = None,
                 lane_backlog: Callable[[], Sequence[LaneBacklog]] | None = None,
                 top_tenants: int = 10) -> CollectorRegistry:
    """The API's /metrics: the queue, with `workers_dir` (a `PoolMetrics` folder) its pool's workers, and with
    `lane_backlog` (the job store's) the backlog per lane and tenant."""
    registry = CollectorRegistry()
    registry.register(QueueCollector(stats))
    if lane_backlog is not None:
        registry.register(LaneCollector(lane_backlog, top_tenants))
    if workers_dir is not None:
        _WorkersCollector(registry, workers_dir)
    return registry


class _WorkersCollector(MultiProcessCollector):
    """prometheus_client's reader of a multiprocess folder, minus one race: a worker creates its file empty
    and sizes it an instant later, and the library's reader fails on an empty file (the whole scrape with
    it). Such a file holds no value yet, so it is skipped. So are the live gauges (`gauge_live*_<pid>.db`)
    of a process that no longer exists: a supervisor that could not call `process_dead` (one killed -9,
    or `framequeue autoscale`, whose loop reaps its own workers) would otherwise count it up forever."""

    def __init__(self, registry: CollectorRegistry, path: Path) -> None:
        super().__init__(registry, path=str(path))  # type: ignore[no-untyped-call]
        self._folder = path

    def collect(self) -> Iterable[Metric]:
        files = []
        for path in self._folder.glob("*.db"):
            with contextlib.suppress(FileNotFoundError):  # a dead worker's gauges, just removed
                if path.stat().st_size > 0 and not _dead_live_gauge(path):
                    files.append(str(path))
        metrics: Iterable[Metric] = self.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
        return metrics


_LIVE_GAUGE = re.compile(r"gauge_live\w*_(\d+)\.db")


def _dead_live_gauge(path: Path) -> bool:
    """Whether `path` is a live gauge file of a process that has exited (and been reaped)."""
    match = _LIVE_GAUGE.fullmatch(path.name)
    if match is None:
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


class PoolMetrics:
    """The folder where the worker processes of one `framequeue up` write their metrics, and its readers.

    This is prometheus_client's multiprocess mode, chosen over the API scraping its workers because it is
    the library's own, maintained answer to pre-fork servers (gunicorn's), and because it survives what a
    scrape of each worker would not: a worker killed -9 leaves its files, so the summed counters and
    histograms never go back (no reset to detect), a scrape never waits on a busy or dying worker, and no
    worker needs a port. Each worker process gets `PROMETHEUS_MULTIPROC_DIR` (the only switch the library
    has, read when it is imported) from the pool and writes its values there; counters and histograms are
    summed over every process that ever ran in this `up`, and the gauges are `livesum` (the sum over
    living workers: `framequeue_worker_up` is the worker count, `framequeue_worker_busy` the busy ones),
    so the pool calls `process_dead` for each worker that exits. Series are the ones a standalone worker
    exports, with the same names and labels.
    """

    #: the variable that puts a process's prometheus_client in multiprocess mode (read at its import)
    ENV = "PROMETHEUS_MULTIPROC_DIR"

    def __init__(self, path: Path) -> None:
        self.path = path

    def reset(self) -> None:
        """Start empty: files of an earlier run (even one killed -9) would add its counts to this one's."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        """What a worker process's environment needs to write here."""
        return {self.ENV: str(self.path)}

    def process_dead(self, pid: int) -> None:
        """Drop a dead worker's live gauges (its counters and histograms stay in the sums)."""
        mark_process_dead(pid, str(self.path))  # type: ignore[no-untyped-call]

    def registry(self) -> CollectorRegistry:
        """Every worker's metrics, merged."""
        registry = CollectorRegistry()
        _WorkersCollector(registry, self.path)
        return registry

    def serve(self, port: int, host: str = "127.0.0.1") -> Callable[[], None]:
        """Expose the merged workers' /metrics on host:port from a daemon thread; returns its stop."""
        server, thread = start_http_server(port, addr=host, registry=self.registry())

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(5)

        return stop


class WorkerMetrics:
    """One worker process's metrics, on their own registry (several workers may share a process in tests)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # livesum: under `framequeue up` (PoolMetrics) the sum over the living worker processes
        self.up = Gauge("framequeue_worker_up", "1 per running worker process (sum it for the worker count)",
                        registry=r, multiprocess_mode="livesum")
        self.busy = Gauge("framequeue_worker_busy", "1 while the worker holds a job", registry=r,
                          multiprocess_mode="livesum")
        self.jobs = Counter("framequeue_jobs", "Jobs this worker ended or handed back, by outcome "
                            "(succeeded, failed, cancelled, retry, handed_back, lease_lost, skipped)",
                            ["outcome"], registry=r)
        self.backlog_s = Histogram("framequeue_time_in_backlog_seconds",
                                   "Seconds from submit to this attempt's claim", buckets=DURATION_BUCKETS_S,
                                   registry=r)
        self.processing_s = Histogram("framequeue_processing_seconds",
                                      "Seconds from claim to the end of the attempt (fetch, run, commit)",
                                      buckets=DURATION_BUCKETS_S, registry=r)
        self.stage_s = Counter("framequeue_stage_seconds", "Seconds spent per pipeline stage, summed over jobs",
                               ["stage"], registry=r)
        self.model_latency_s = Histogram("framequeue_model_latency_seconds",
                                         "Seconds per model call (one batch), a job's mean",
                                         buckets=LATENCY_BUCKETS_S, registry=r)
        self.frames = Counter("framequeue_frames", "Frames decoded and written by this worker", registry=r)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose /metrics on host:port from a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)
