"""What the peers' no-op task does: append `TAG START END` (epoch seconds) to the file named by FQB_RECORD.

A local O_APPEND write of one short line, atomic between processes, costs microseconds and touches no
broker, so it adds nothing that differs between Redis and RabbitMQ."""

from __future__ import annotations

import os
import time
from pathlib import Path

_fd: int | None = None
_pid = 0


def noop(tag: str) -> None:
    global _fd, _pid
    started = time.time()
    if _fd is None or _pid != os.getpid():  # a forked pool process opens its own descriptor
        _fd = os.open(os.environ["FQB_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _pid = os.getpid()
    os.write(_fd, f"{tag} {started:.6f} {time.time():.6f}\n".encode())


def read(path: Path) -> dict[str, tuple[float, float]]:
    """tag -> (started, finished); a tag run twice (a redelivery) keeps its first start."""
    out: dict[str, tuple[float, float]] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] not in out:
            out[parts[0]] = (float(parts[1]), float(parts[2]))
    return out


def count(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 16), b""))
    except FileNotFoundError:
        return 0
