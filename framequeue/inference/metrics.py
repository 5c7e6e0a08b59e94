"""serve-models' Prometheus metrics, read from its batchers' counters on each scrape. Units are in the
names, as in framequeue.metrics (the API's and the workers')."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from framequeue.inference.batcher import QUEUE_BUCKETS_S, BatchStats

__all__ = ["InferenceCollector", "inference_registry"]


class InferenceCollector(Collector):
    """serve-models: per model version, requests, executions, the batch-size distribution and the queue-time
    distribution, read from the batchers' counters on each scrape."""

    def __init__(self, batches: Callable[[], Mapping[str, BatchStats]]) -> None:
        self._batches = batches

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("framequeue_inference_requests", "Inference requests answered",
                                       labels=["model"])
        executions = CounterMetricFamily("framequeue_inference_executions", "Model executions (merged batches)",
                                         labels=["model"])
        failed = CounterMetricFamily("framequeue_inference_failed_requests",
                                     "Requests failed, timed out or cancelled", labels=["model"])
        compute = CounterMetricFamily("framequeue_inference_compute_seconds", "Seconds spent running the model",
                                      labels=["model"])
        sizes = HistogramMetricFamily("framequeue_inference_batch_size_rows",
                                      "Rows per model execution (the dynamic batcher's merges)", labels=["model"])
        queued = HistogramMetricFamily("framequeue_inference_queue_seconds",
                                       "Seconds a request waited in the batcher before its execution started",
                                       labels=["model"])
        for ref, stats in sorted(self._batches().items()):
            requests.add_metric([ref], stats.requests)
            executions.add_metric([ref], stats.executions)
            failed.add_metric([ref], stats.failed + stats.timed_out + stats.cancelled)
            compute.add_metric([ref], stats.compute_ns / 1e9)
            bounds = sorted(set([1, 2, 4, 8, 16, 32, 64, 128, *stats.batch_sizes]))
            rows_sum = float(sum(size * n for size, n in stats.batch_sizes.items()))
            sizes.add_metric([ref], [(str(b), float(sum(n for size, n in stats.batch_sizes.items() if size <= b)))
                                     for b in bounds] + [("+Inf", float(stats.executions))], rows_sum)
            running = 0
            buckets = []
            for bound, count in zip((*QUEUE_BUCKETS_S, float("inf")), stats.queue_buckets, strict=True):
                running += count
                buckets.append(("+Inf" if bound == float("inf") else str(bound), float(running)))
            queued.add_metric([ref], buckets, stats.queue_ns / 1e9)
        yield from (requests, executions, failed, compute, sizes, queued)


def inference_registry(batches: Callable[[], Mapping[str, BatchStats]]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(InferenceCollector(batches))
    return registry
