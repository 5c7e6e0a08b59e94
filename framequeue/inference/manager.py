"""Loads model versions on first use under a memory budget; unloads the least recently used idle one.

Each loaded version is charged its config's `memory_bytes`. When a version must load and the budget
would be exceeded, idle versions (no request queued or running) are unloaded, least recently used
first, until it fits. When it cannot fit yet because the others are busy, the request waits for one of
them to go idle (deferred), in a bounded waiting room; past the bound, or for a version larger than the
whole budget, ServiceUnavailable (HTTP 503, gRPC UNAVAILABLE). A busy version is never unloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from framequeue.errors import ServiceUnavailable
from framequeue.inference.batcher import Arrays, BatchStats, DynamicBatcher
from framequeue.models.version import ModelVersion

__all__ = ["Loaded", "ModelManager", "Resident", "Runner", "choose_evictions"]

log = logging.getLogger(__name__)

#: requests that may wait for memory at once before the next one is refused with 503
DEFAULT_MAX_WAITING: Final = 64


class Runner(Protocol):
    def run(self, inputs: Arrays) -> Arrays: ...


@dataclass(frozen=True)
class Resident:
    """What the unload policy sees of one loaded version."""

    ref: str
    memory_bytes: int
    busy: bool
    last_used_s: float


def choose_evictions(resident: Sequence[Resident], need_bytes: int, budget_bytes: int) -> list[str] | None:
    """The versions to unload so that `need_bytes` more fit in the budget, least recently used first:
    [] when it fits already, None when it cannot fit without unloading a busy one (pure)."""
    used = sum(r.memory_bytes for r in resident)
    excess = used + need_bytes - budget_bytes
    if excess <= 0:
        return []
    chosen: list[str] = []
    for r in sorted((r for r in resident if not r.busy), key=lambda r: r.last_used_s):
        chosen.append(r.ref)
        excess -= r.memory_bytes
        if excess <= 0:
            return chosen
    return None


@dataclass(eq=False)
class Loaded:
    """A version in memory: its runner and its batcher. `users` counts requests holding it."""

    version: ModelVersion
    memory_bytes: int
    last_used_s: float
    ready: asyncio.Future[None]
    runner: Runner | None = None
    batcher: DynamicBatcher | None = None
    users: int = 0

    @property
    def busy(self) -> bool:
        return self.users > 0 or not self.ready.done() or (self.batcher is not None and self.batcher.busy)


@dataclass
class ManagerStats:
    loads: int = 0
    unloads: int = 0
    deferred: int = 0
    refused: int = 0
    #: per version ref, kept across unloads
    batches: dict[str, BatchStats] = field(default_factory=dict)


class ModelManager:
    def __init__(
        self,
        loader: Callable[[ModelVersion], Runner],
        budget_bytes: int,
        batching: bool = True,
        max_waiting: int = DEFAULT_MAX_WAITING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget_bytes = budget_bytes
        self.batching = batching
        self.stats = ManagerStats()
        self._loader = loader
        self._max_waiting = max_waiting
        self._clock = clock
        self._loaded: dict[str, Loaded] = {}
        self._waiting = 0
        self._changed = asyncio.Event()

    @property
    def loaded(self) -> list[str]:
        return list(self._loaded)

    @property
    def used_bytes(self) -> int:
        return sum(e.memory_bytes for e in self._loaded.values())

    @property
    def waiting(self) -> int:
        return self._waiting

    @contextlib.asynccontextmanager
    async def use(self, version: ModelVersion) -> AsyncIterator[Loaded]:
        """Hold `version` loaded (loading it, possibly after waiting for memory) for the block's duration."""
        entry = await self._acquire(version)
        try:
            yield entry
        finally:
            entry.users -= 1
            entry.last_used_s = self._clock()
            self._notify()

    async def close(self) -> None:
        entries, self._loaded = list(self._loaded.values()), {}
        for entry in entries:
            if entry.batcher is not None:
                await entry.batcher.close()

    async def _acquire(self, version: ModelVersion) -> Loaded:
        need = version.memory_bytes
        if need > self.budget_bytes:
            self.stats.refused += 1
            raise ServiceUnavailable(
                f"{version.ref} needs {need / 2**20:.1f} MiB, more than the whole memory budget "
                f"({self.budget_bytes / 2**20:.1f} MiB): raise --memory-budget-mb or its memory_bytes"
            )
        while True:
            entry = self._loaded.get(version.ref)
            if entry is not None:
                entry.users += 1
                entry.last_used_s = self._clock()
                try:
                    await asyncio.shield(entry.ready)
                except BaseException:
                    entry.users -= 1
                    raise
                return entry
            resident = [Resident(r, e.memory_bytes, e.busy, e.last_used_s) for r, e in self._loaded.items()]
            evict = choose_evictions(resident, need, self.budget_bytes)
            if evict is not None:
                return await self._load(version, need, evict)
            await self._wait_for_memory(version, need)

    async def _wait_for_memory(self, version: ModelVersion, need: int) -> None:
        if self._waiting >= self._max_waiting:
            self.stats.refused += 1
            raise ServiceUnavailable(
                f"{version.ref} cannot load yet ({need / 2**20:.1f} MiB needed, "
                f"{(self.budget_bytes - self.used_bytes) / 2**20:.1f} MiB free, the loaded models are busy) "
                f"and {self._waiting} requests already wait for memory; retry later"
            )
        self.stats.deferred += 1
        self._waiting += 1
        try:
            await self._changed.wait()
        finally:
            self._waiting -= 1

    async def _load(self, version: ModelVersion, need: int, evict: list[str]) -> Loaded:
        # bookkeeping first, with no await in between, so concurrent callers see the memory as taken
        gone = [self._loaded.pop(ref) for ref in evict]
        entry = Loaded(version, need, self._clock(), asyncio.get_running_loop().create_future(), users=1)
        self._loaded[version.ref] = entry
        try:
            for old in gone:
                log.info("unloading %s (least recently used, idle) to load %s", old.version.ref, version.ref)
                self.stats.unloads += 1
                if old.batcher is not None:
                    await old.batcher.close()
            runner = await asyncio.to_thread(self._loader, version)
        except BaseException as exc:
            self._loaded.pop(version.ref, None)
            entry.users -= 1
            if isinstance(exc, Exception):
                entry.ready.set_exception(exc)
                entry.ready.exception()  # retrieved: waiters re-raise it, nobody else must log it
            else:
                entry.ready.cancel()
            self._notify()
            raise
        serving = version.serving
        stats = self.stats.batches.setdefault(version.ref, BatchStats())
        entry.runner = runner
        entry.batcher = DynamicBatcher(
            runner.run,
            max_batch_size=serving.max_batch_size if self.batching else 1,
            max_queue_delay_s=serving.max_queue_delay_us / 1e6 if self.batching else 0.0,
            instances=serving.instances,
            name=version.ref,
            stats=stats,
        )
        self.stats.loads += 1
        log.info("loaded %s (%.1f MiB charged)", version.ref, need / 2**20)
        entry.ready.set_result(None)
        return entry

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
