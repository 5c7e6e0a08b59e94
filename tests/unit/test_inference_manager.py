"""Model manager: load on first use, LRU unload of idle versions under a budget, deferred loads, 503."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest

from framequeue.errors import ServiceUnavailable
from framequeue.inference.batcher import Arrays
from framequeue.inference.manager import ModelManager, Resident, choose_evictions
from framequeue.models.version import ModelVersion
from tests.unit.inference_models import fake_version
from tests.unit.test_batcher import run_async

A, B, C = fake_version("a"), fake_version("b"), fake_version("c")
X = {"x": np.zeros((1, 4), np.float32)}


class Runner:
    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate
        self.entered = threading.Event()

    def run(self, inputs: Arrays) -> Arrays:
        self.entered.set()
        self.gate.wait(5)
        return {"y": inputs["x"] + 1}


class Loader:
    """Builds runners; `gates[name]` holds that model's executions until set."""

    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.gates: dict[str, threading.Event] = {}
        self.runners: dict[str, Runner] = {}

    def __call__(self, version: ModelVersion) -> Runner:
        self.loaded.append(version.ref)
        gate = self.gates.setdefault(version.name, threading.Event())
        self.runners[version.name] = Runner(gate)
        return self.runners[version.name]

    def open(self, *names: str) -> None:
        for name in names:
            self.gates.setdefault(name, threading.Event()).set()


async def infer(manager: ModelManager, version: ModelVersion) -> Arrays:
    async with manager.use(version) as loaded:
        assert loaded.batcher is not None
        return await loaded.batcher.submit(X)


def test_choose_evictions_is_lru_among_idle_only() -> None:
    resident = [Resident("a:1", 100, False, 3.0), Resident("b:1", 100, True, 1.0), Resident("c:1", 100, False, 2.0)]
    assert choose_evictions(resident, 100, 400) == []
    assert choose_evictions(resident, 100, 300) == ["c:1"]  # b is older but busy
    assert choose_evictions(resident, 200, 300) == ["c:1", "a:1"]
    assert choose_evictions(resident, 300, 300) is None  # would need the busy one


@run_async
async def test_the_least_recently_used_idle_model_is_unloaded() -> None:
    loader = Loader()
    loader.open("a", "b", "c")
    manager = ModelManager(loader, budget_bytes=250)
    await infer(manager, A)
    await infer(manager, B)
    await infer(manager, A)  # b is now the least recently used
    await infer(manager, C)
    assert loader.loaded == ["a:1", "b:1", "c:1"]
    assert sorted(manager.loaded) == ["a:1", "c:1"] and manager.used_bytes == 200
    assert manager.stats.unloads == 1
    await infer(manager, B)  # loads again, a goes now
    assert sorted(manager.loaded) == ["b:1", "c:1"]
    await manager.close()


@run_async
async def test_a_busy_model_is_never_unloaded_and_a_request_that_cannot_fit_waits() -> None:
    loader = Loader()
    loader.open("b", "c")
    manager = ModelManager(loader, budget_bytes=250)
    busy_a = asyncio.create_task(infer(manager, A))  # a's execution blocks on its gate
    while "a" not in loader.runners:
        await asyncio.sleep(0.001)
    await asyncio.to_thread(loader.runners["a"].entered.wait, 5)
    await infer(manager, B)
    busy_b = asyncio.create_task(infer(manager, B))  # b queued behind nothing, but hold it busy
    loader.gates["b"].clear()
    # both loaded models are busy: c waits (deferred) instead of evicting one
    deferred = asyncio.create_task(infer(manager, C))
    for _ in range(50):
        await asyncio.sleep(0.001)
    assert not deferred.done() and manager.waiting == 1 and manager.stats.deferred == 1
    assert sorted(manager.loaded) == ["a:1", "b:1"]
    loader.gates["a"].set()  # a finishes and goes idle: c takes its place
    await busy_a
    np.testing.assert_array_equal((await deferred)["y"], X["x"] + 1)
    assert sorted(manager.loaded) == ["b:1", "c:1"]
    loader.gates["b"].set()
    await busy_b
    await manager.close()


@run_async
async def test_a_full_waiting_room_gives_a_clear_503() -> None:
    loader = Loader()
    manager = ModelManager(loader, budget_bytes=150, max_waiting=1)
    busy = asyncio.create_task(infer(manager, A))
    while "a" not in loader.runners:
        await asyncio.sleep(0.001)
    waiting = asyncio.create_task(infer(manager, B))
    while manager.waiting < 1:
        await asyncio.sleep(0.001)
    with pytest.raises(ServiceUnavailable, match="already wait for memory"):
        await infer(manager, C)
    loader.open("a", "b")
    await asyncio.gather(busy, waiting)
    assert manager.stats.refused == 1
    await manager.close()


@run_async
async def test_a_model_larger_than_the_budget_is_refused_at_once() -> None:
    manager = ModelManager(Loader(), budget_bytes=50)
    with pytest.raises(ServiceUnavailable, match="more than the whole memory budget"):
        await infer(manager, A)


@run_async
async def test_concurrent_first_requests_load_once_and_batch_together() -> None:
    loader = Loader()
    loader.open("a")
    manager = ModelManager(loader, budget_bytes=1000)
    version = fake_version("a", max_queue_delay_us=50_000)
    await asyncio.gather(*(infer(manager, version) for _ in range(6)))
    assert loader.loaded == ["a:1"]
    assert manager.stats.batches["a:1"].executions == 1 and manager.stats.batches["a:1"].requests == 6
    await manager.close()


@run_async
async def test_batching_off_runs_requests_alone() -> None:
    loader = Loader()
    loader.open("a")
    manager = ModelManager(loader, budget_bytes=1000, batching=False)
    version = fake_version("a", max_queue_delay_us=50_000)
    await asyncio.gather(*(infer(manager, version) for _ in range(4)))
    assert manager.stats.batches["a:1"].executions == 4
    await manager.close()


@run_async
async def test_a_failed_load_is_reported_and_frees_its_memory() -> None:
    def broken(version: ModelVersion) -> Any:
        raise RuntimeError("bad graph")

    manager = ModelManager(broken, budget_bytes=1000)
    with pytest.raises(RuntimeError, match="bad graph"):
        await infer(manager, A)
    assert manager.loaded == [] and manager.used_bytes == 0
