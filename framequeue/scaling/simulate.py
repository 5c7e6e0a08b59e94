"""A discrete-event simulation of workers and inference endpoints under an autoscaling controller.

Events (a heapq, ordered by time then sequence, so runs are deterministic): a video arrives, a worker or an
endpoint finishes starting, a job ends, the controller ticks. A worker runs one video at a time and needs
inference capacity: at most `workers_per_endpoint` jobs run per ready endpoint. The controller is asked
every `tick_s` for the desired worker count; endpoints follow it (ceil(workers / ratio), never fewer than
the running jobs need). Scale-in removes starting pods first, then idle ones, and lets busy ones drain
(they finish their video, then go: the worker's SIGTERM drain). Everything is billed from creation to
removal, start-up included, over [0, day_s); jobs that arrive in the warm-up before 0 are not reported.

`split_wall_s` runs one long video split into segments (issue 17) through the same engine: the split phase,
then the segments as jobs on a fixed set of ready workers, then the stitch, serial on one worker.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from framequeue.scaling.arrivals import DAY_S, Video
from framequeue.scaling.policy import endpoints_for

__all__ = [
    "Controller", "Infra", "Prices", "Result", "Sample", "SplitJob", "View", "percentile", "simulate", "split_wall_s",
]


@dataclass(frozen=True)
class Prices:
    #: one GPU node holding one inference endpoint, $/h
    gpu_node_per_h: float = 3.06
    #: one CPU worker pod (decode, render, encode), $/h
    cpu_worker_per_h: float = 0.288


@dataclass(frozen=True)
class Infra:
    #: a worker pod's start-up (scheduled on a CPU node, image cached, fork server up), uniform range, s
    worker_start_s: tuple[float, float] = (20.0, 40.0)
    #: a GPU node + inference endpoint's start-up (node provisioned, image pulled, model loaded), s
    endpoint_start_s: tuple[float, float] = (60.0, 120.0)
    workers_per_endpoint: float = 4.0
    #: how often the controller runs (KEDA's pollingInterval / the HPA's sync period), s
    tick_s: float = 15.0


@dataclass(frozen=True)
class View:
    """What a controller sees at a tick."""

    #: seconds since local midnight of the simulated day
    t_s: float
    waiting: int
    in_flight: int
    #: workers that exist (starting, idle or busy; not draining)
    workers: int
    ready_workers: int


class Controller(Protocol):
    name: str

    def desired_workers(self, view: View) -> int: ...


@dataclass(frozen=True)
class Sample:
    t_s: float
    arrivals: int
    outstanding: int
    workers: int
    endpoints: int
    #: jobs that could run now: min(ready workers, ready endpoints x ratio)
    capacity: int


@dataclass
class Result:
    policy: str
    completion_s: list[float]
    cost_usd: float
    gpu_hours: float
    worker_hours: float
    samples: list[Sample] = field(default_factory=list)

    def sla_attainment(self, sla_s: float) -> float:
        if not self.completion_s:
            return 1.0
        return sum(1 for c in self.completion_s if c <= sla_s) / len(self.completion_s)

    def cost_per_1000(self) -> float:
        return 1000.0 * self.cost_usd / max(len(self.completion_s), 1)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(q / 100.0 * len(ordered)) - 1)]


@dataclass
class _Pod:
    created_s: float
    ready: bool = False
    busy: bool = False
    draining: bool = False
    removed: bool = False


def simulate(
    videos: Sequence[Video],
    controller: Controller,
    infra: Infra = Infra(),
    prices: Prices = Prices(),
    seed: int = 0,
    start_s: float = -3600.0,
    day_s: float = DAY_S,
    initial_ready_workers: int = 0,
) -> Result:
    """Run the controller over the videos from start_s; report jobs arriving in [0, day_s)."""
    rng = random.Random(seed)
    events: list[tuple[float, int, str, int]] = []
    seq = 0

    def push(t: float, kind: str, ref: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, ref))

    workers: list[_Pod] = []
    endpoints: list[_Pod] = []
    waiting: deque[int] = deque()
    job_worker: dict[int, int] = {}
    completion: dict[int, float] = {}
    cost = [0.0, 0.0]  # worker-seconds, endpoint-seconds billed inside [0, day_s)

    def bill(pod: _Pod, until_s: float, slot: int) -> None:
        cost[slot] += max(0.0, min(until_s, day_s) - max(pod.created_s, 0.0))

    def add_worker(now: float, ready: bool = False) -> None:
        workers.append(_Pod(now, ready=ready))
        if not ready:
            push(now + rng.uniform(*infra.worker_start_s), "worker_ready", len(workers) - 1)

    def add_endpoint(now: float, ready: bool = False) -> None:
        endpoints.append(_Pod(now, ready=ready))
        if not ready:
            push(now + rng.uniform(*infra.endpoint_start_s), "endpoint_ready", len(endpoints) - 1)

    def remove(pod: _Pod, now: float, slot: int) -> None:
        pod.removed = True
        bill(pod, now, slot)

    def live(pods: list[_Pod]) -> list[int]:
        return [i for i, p in enumerate(pods) if not p.removed and not p.draining]

    def dispatch(now: float) -> None:
        running = sum(1 for w in workers if w.busy)
        ready_eps = sum(1 for e in endpoints if e.ready and not e.removed)
        limit = int(ready_eps * infra.workers_per_endpoint + 1e-9)
        idle = [i for i in live(workers) if workers[i].ready and not workers[i].busy]
        while waiting and idle and running < limit:
            job, w = waiting.popleft(), idle.pop()
            workers[w].busy = True
            job_worker[job] = w
            running += 1
            push(now + videos[job].service_s, "done", job)

    def scale(now: float, desired: int) -> None:
        ids = live(workers)
        if desired > len(ids):
            for _ in range(desired - len(ids)):
                add_worker(now)
        elif desired < len(ids):
            # starting pods first (newest first), then idle ones, then busy ones drain
            order = sorted(ids, key=lambda i: (workers[i].ready, workers[i].busy, -workers[i].created_s))
            for i in order[: len(ids) - desired]:
                if workers[i].busy:
                    workers[i].draining = True
                else:
                    remove(workers[i], now, 0)
        busy = sum(1 for w in workers if w.busy)
        want = max(endpoints_for(desired, infra.workers_per_endpoint), endpoints_for(busy, infra.workers_per_endpoint))
        eps = live(endpoints)
        if want > len(eps):
            for _ in range(want - len(eps)):
                add_endpoint(now)
        elif want < len(eps):
            for i in sorted(eps, key=lambda i: (endpoints[i].ready, -endpoints[i].created_s))[: len(eps) - want]:
                remove(endpoints[i], now, 1)

    for _ in range(initial_ready_workers):
        add_worker(start_s, ready=True)
    for _ in range(endpoints_for(initial_ready_workers, infra.workers_per_endpoint)):
        add_endpoint(start_s, ready=True)
    for j, v in enumerate(videos):
        push(v.arrival_s, "arrival", j)
    push(start_s, "tick", 0)

    counted = sum(1 for v in videos if 0 <= v.arrival_s < day_s)
    done_counted = 0
    samples: list[Sample] = []
    arrivals_since_tick = 0
    while events:
        now, _, kind, ref = heapq.heappop(events)
        if kind == "arrival":
            waiting.append(ref)
            arrivals_since_tick += 1
        elif kind == "worker_ready":
            workers[ref].ready = True
        elif kind == "endpoint_ready":
            endpoints[ref].ready = True
        elif kind == "done":
            w = workers[job_worker.pop(ref)]
            w.busy = False
            if w.draining:
                remove(w, now, 0)
            v = videos[ref]
            if 0 <= v.arrival_s < day_s:
                completion[ref] = now - v.arrival_s
                done_counted += 1
        elif kind == "tick":
            ids = live(workers)
            view = View(
                t_s=now,
                waiting=len(waiting),
                in_flight=len(job_worker),
                workers=len(ids),
                ready_workers=sum(1 for i in ids if workers[i].ready),
            )
            scale(now, controller.desired_workers(view))
            if 0 <= now < day_s:
                ready_eps = sum(1 for e in endpoints if e.ready and not e.removed)
                samples.append(
                    Sample(
                        now,
                        arrivals_since_tick,
                        len(waiting) + len(job_worker),
                        len(live(workers)),
                        len(live(endpoints)),
                        min(view.ready_workers, int(ready_eps * infra.workers_per_endpoint + 1e-9)),
                    )
                )
            arrivals_since_tick = 0
            if now < day_s or done_counted < counted:
                push(now + infra.tick_s, "tick", 0)
        dispatch(now)
        if now >= day_s and done_counted >= counted:
            break

    end = max(now, day_s) if events or workers else day_s
    for w in workers:
        if not w.removed:
            bill(w, end, 0)
    for e in endpoints:
        if not e.removed:
            bill(e, end, 1)
    worker_h, gpu_h = cost[0] / 3600.0, cost[1] / 3600.0
    return Result(
        policy=controller.name,
        completion_s=[completion[j] for j in sorted(completion)],
        cost_usd=worker_h * prices.cpu_worker_per_h + gpu_h * prices.gpu_node_per_h,
        gpu_hours=gpu_h,
        worker_hours=worker_h,
        samples=samples,
    )


@dataclass(frozen=True)
class SplitJob:
    """One long video split into segments, as measured (or scaled from a measurement)."""

    #: the split phase: scan the packets, remux the segments, create the segment jobs (one worker), s
    split_s: float
    #: one worker's processing time of each segment, in segment order, s
    segments_s: tuple[float, ...]
    #: the stitch phase: concatenate the segments' outputs, one finish (one worker), s
    stitch_s: float
    #: a hand-off's latency: split commit -> a segment's claim, last segment -> the stitch's claim, s
    handoff_s: float = 0.0


@dataclass
class _Fixed:
    workers: int
    name: str = "fixed"

    def desired_workers(self, view: View) -> int:
        return self.workers


def split_wall_s(job: SplitJob, workers: int) -> float:
    """Seconds from the split's start to the stitch's end with `workers` ready one-job workers.

    The segments arrive together once the split and a hand-off are done, and run in order on whichever
    worker is free (simulate's FIFO dispatch); the stitch starts a hand-off after the last one ends.
    More workers than segments gain nothing: the wall time floors at split + longest segment + stitch.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if not job.segments_s:
        raise ValueError("a split job has at least one segment")
    ready_s = job.split_s + job.handoff_s
    videos = [Video(ready_s, s) for s in job.segments_s]
    result = simulate(
        videos,
        _Fixed(workers),
        # one inference slot per worker (the detect pipeline infers in the worker); ticks change nothing
        Infra(workers_per_endpoint=1.0, tick_s=3600.0),
        start_s=0.0,
        day_s=ready_s + 1.0,
        initial_ready_workers=workers,
    )
    return ready_s + max(result.completion_s) + job.handoff_s + job.stitch_s
