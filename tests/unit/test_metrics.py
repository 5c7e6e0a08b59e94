"""The Prometheus collectors: the queue as the API exports it, and serve-models' batching distributions."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from framequeue.brokers.base import QueueStats
from framequeue.inference.batcher import BatchStats
from framequeue.inference.metrics import inference_registry
from framequeue.metrics import WorkerMetrics, api_registry


def _samples(registry: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = generate_latest(registry).decode()  # type: ignore[arg-type]
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def test_the_api_exports_the_queue_with_units_in_the_names() -> None:
    stats = QueueStats(ready=5, in_flight=2, delayed=1, dead=3, oldest_ready_age_s=42.5)
    got = _samples(api_registry(lambda: stats))
    assert got[("framequeue_queue_up", ())] == 1
    assert got[("framequeue_backlog_jobs", ())] == 6
    assert got[("framequeue_inflight_jobs", ())] == 2
    assert got[("framequeue_outstanding_jobs", ())] == 8
    assert got[("framequeue_dead_letter_jobs", ())] == 3
    assert got[("framequeue_oldest_waiting_age_seconds", ())] == 42.5
    assert got[("framequeue_backlog_without_capacity_jobs", ())] == 0


def test_backlog_without_capacity_is_the_backlog_when_nothing_runs_and_age_may_be_unknown() -> None:
    got = _samples(api_registry(lambda: QueueStats(ready=4, in_flight=0, oldest_ready_age_s=None)))
    assert got[("framequeue_backlog_without_capacity_jobs", ())] == 4
    assert ("framequeue_oldest_waiting_age_seconds", ()) not in got  # RabbitMQ cannot tell


def test_a_broker_that_does_not_answer_is_queue_up_0_and_is_asked_once_a_second() -> None:
    calls = []

    def failing() -> QueueStats:
        calls.append(1)
        raise ConnectionError("down")

    registry = api_registry(failing)
    assert _samples(registry) == {("framequeue_queue_up", ()): 0.0}
    _samples(registry)
    assert len(calls) == 1  # the second scrape within a second used the cached look


def test_serve_models_exports_batch_sizes_and_queue_times_as_histograms() -> None:
    stats = BatchStats(requests=7, rows=7, executions=3, queue_ns=int(0.03e9), compute_ns=int(0.6e9),
                       batch_sizes={1: 1, 2: 1, 4: 1})
    for queued_s in (0.0001, 0.003, 0.003, 0.02, 0.02, 0.02, 2.0):
        stats.observe_queue(queued_s)
    got = _samples(inference_registry(lambda: {"yolox_nano/1": stats}))
    m = (("model", "yolox_nano/1"),)
    assert got[("framequeue_inference_requests_total", m)] == 7
    assert got[("framequeue_inference_executions_total", m)] == 3
    assert got[("framequeue_inference_compute_seconds_total", m)] == 0.6

    def bucket(name: str, le: str) -> float:
        return got[(name, (("le", le), ("model", "yolox_nano/1")))]

    assert [bucket("framequeue_inference_batch_size_rows_bucket", le) for le in ("1", "2", "4", "8", "+Inf")] == [
        1, 2, 3, 3, 3]
    assert got[("framequeue_inference_batch_size_rows_sum", m)] == 7
    assert bucket("framequeue_inference_queue_seconds_bucket", "0.0005") == 1
    assert bucket("framequeue_inference_queue_seconds_bucket", "0.005") == 3
    assert bucket("framequeue_inference_queue_seconds_bucket", "0.025") == 6
    assert bucket("framequeue_inference_queue_seconds_bucket", "+Inf") == 7


def test_worker_metrics_name_their_units() -> None:
    metrics = WorkerMetrics()
    metrics.up.set(1)
    metrics.jobs.labels("succeeded").inc()
    metrics.stage_s.labels("decode").inc(1.5)
    metrics.backlog_s.observe(0.2)
    got = _samples(metrics.registry)
    assert got[("framequeue_worker_up", ())] == 1
    assert got[("framequeue_jobs_total", (("outcome", "succeeded"),))] == 1
    assert got[("framequeue_stage_seconds_total", (("stage", "decode"),))] == 1.5
    assert got[("framequeue_time_in_backlog_seconds_count", ())] == 1


def test_the_grafana_dashboard_reads_only_metrics_framequeue_exports() -> None:
    import json
    import re
    from pathlib import Path

    from prometheus_client import CollectorRegistry

    exported: set[str] = set()
    registries: list[CollectorRegistry] = [
        api_registry(lambda: QueueStats(ready=1, in_flight=0)),
        inference_registry(lambda: {"m/1": BatchStats(batch_sizes={1: 1})}),
        WorkerMetrics().registry,
    ]
    worker = WorkerMetrics()
    worker.jobs.labels("succeeded").inc()
    worker.stage_s.labels("decode").inc()
    registries.append(worker.registry)
    for registry in registries:
        exported |= {name for name, _ in _samples(registry)}
    dashboard = json.loads((Path(__file__).parents[2] / "deploy/grafana/framequeue.json").read_text())
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"\bframequeue_[a-z_]+", target["expr"])}
    assert len(dashboard["panels"]) >= 12
    assert used and used <= exported, sorted(used - exported)
