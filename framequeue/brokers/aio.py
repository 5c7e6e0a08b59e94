"""A private event loop in a daemon thread, so the synchronous protocols (Broker, JobStore) can sit on
the brokers' official async clients (nats-py, aio-pika, redis.asyncio, psycopg's AsyncConnection).

One LoopThread per backend instance; `run` blocks the calling thread until the coroutine finishes and
re-raises its exception there. Calls from several threads are safe: they are serialised by the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: bound on any backend call that names none, so a blackholed connection cannot hang a caller forever
DEFAULT_CALL_TIMEOUT_S = 30.0


class LoopThread:
    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"aio-{name}", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        self._loop.run_forever()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = DEFAULT_CALL_TIMEOUT_S) -> T:
        """Run coro on the loop and wait for it; TimeoutError (after cancelling it) past timeout_s."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.run called from its own loop: await the coroutine instead")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"backend call did not finish within {timeout_s} s") from None

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()
