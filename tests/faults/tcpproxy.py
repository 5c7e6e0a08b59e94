"""A small TCP fault proxy for the network fault tests: sits between a worker and its broker and can
pass traffic, reset every connection, blackhole (hold connections open, forward nothing), or delay every
chunk. Runs in a thread of the test process; listens on loopback unless given another local address (the
separate-hosts tests bridge loopback-only services onto a veth address with it, tests/faults/netns.py)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from typing import Literal

Mode = Literal["pass", "blackhole", "delay"]


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1",
                 listen_port: int = 0) -> None:
        """Forward LISTEN_HOST:LISTEN_PORT (0: any free port, then in `port`) to TARGET_HOST:TARGET_PORT;
        raises OSError when the listening address cannot be bound."""
        self.target = (target_host, target_port)
        self.listen = (listen_host, listen_port)
        self.mode: Mode = "pass"
        self.delay_s = 2.0
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._error: OSError | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._main, name="fault-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(5)
        if self._error is not None:
            self._thread.join(5)
            raise self._error

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            server = self._loop.run_until_complete(asyncio.start_server(self._handle, *self.listen))
        except OSError as exc:  # handed to the constructor, which raises it
            self._error = exc
            self._loop.close()
            self._ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        # shut down cleanly: no socket, task or loop may outlive the proxy (the tests turn those warnings
        # into errors)
        server.close()
        for w in list(self._writers):
            w.transport.abort()
        self._loop.run_until_complete(server.wait_closed())
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while chunk := await src.read(65536):
                    while self.mode == "blackhole":
                        await asyncio.sleep(0.05)
                    if self.mode == "delay":
                        await asyncio.sleep(self.delay_s)
                    dst.write(chunk)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode

    def reset_all(self) -> None:
        """Abort every open connection (the peers see a reset); new connections go through."""

        def abort() -> None:
            for w in list(self._writers):
                transport = w.transport
                sock = transport.get_extra_info("socket")
                if sock is not None:  # linger 0: the close sends RST, not FIN
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
            self._writers.clear()

        self._loop.call_soon_threadsafe(abort)

    def close(self) -> None:
        """Stop listening and forwarding; closing twice is harmless."""
        if not self._thread.is_alive():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
