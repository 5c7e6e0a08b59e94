"""Reference rates for the object-store benchmark: what the machine itself does with the same bytes, so the
reader sees where the bound of an S3 transfer on this machine is.

    python -m bench.storage_ref disk-read FILE          read FILE in 8 MiB pieces (the page cache, mostly)
    python -m bench.storage_ref disk-copy FILE          copy FILE to FILE.copy and fsync it (cp + sync)
    python -m bench.storage_ref disk-write FILE PIECE   write FILE's size to a new file in PIECE-byte write()
                                                        calls, fsync untimed (what a download does to disk)
    python -m bench.storage_ref tcp FILE                FILE's size in bytes over one loopback TCP stream
                                                        to a second process (the wire under the HTTP)
    python -m bench.storage_ref hash FILE               SHA-256, MD5 and CRC-32 of FILE, CPU seconds each
                                                        (the payload work SigV4 over http:// and checksums add)

Each prints one JSON line: bytes, wall seconds, MiB/s, CPU seconds of this process.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import socket
import subprocess
import sys
import time
import zlib
from typing import Any

MIB = 1024 * 1024
PIECE_BYTES = 8 * MIB


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pieces(path: str) -> Any:
    buf = bytearray(PIECE_BYTES)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            yield view[:n]


def disk_read(path: str) -> dict[str, Any]:
    size = 0
    for piece in _pieces(path):
        size += len(piece)
    return {"bytes": size}


def disk_copy(path: str) -> dict[str, Any]:
    target = path + ".copy"
    size = 0
    try:
        with open(target, "wb", buffering=0) as out:
            for piece in _pieces(path):
                size += out.write(piece) or 0
            os.fsync(out.fileno())
    finally:
        os.unlink(target)
    return {"bytes": size}


def disk_write(path: str, piece: int) -> dict[str, Any]:
    """Writes as a download does: whole pieces from one reused buffer, at piece-aligned offsets."""
    size = os.path.getsize(path)
    block = memoryview(bytearray(os.urandom(piece)))
    target = path + ".write"
    try:
        with open(target, "wb", buffering=0) as out:
            written = 0
            while written < size:
                written += out.write(block[: min(piece, size - written)]) or 0
        return {"bytes": written, "piece_bytes": piece}
    finally:
        os.unlink(target)


def tcp(path: str) -> dict[str, Any]:
    """Sends `size` bytes (one 1 MiB buffer, repeated) to a receiver process that reads them into a buffer."""
    size = os.path.getsize(path)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        receiver = subprocess.Popen([sys.executable, "-m", "bench.storage_ref", "tcp-recv", str(port), str(size)])
        conn, _ = server.accept()
        block = memoryview(os.urandom(MIB))
        with conn:
            sent = 0
            while sent < size:
                n = min(MIB, size - sent)
                conn.sendall(block[:n])
                sent += n
            conn.shutdown(socket.SHUT_WR)
            conn.recv(1)  # the receiver closes once it has every byte
    if receiver.wait(timeout=60) != 0:
        raise RuntimeError("the TCP receiver failed")
    return {"bytes": size}


def tcp_recv(port: int, size: int) -> None:
    buf = bytearray(MIB)
    got = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        while got < size:
            n = sock.recv_into(buf)
            if not n:
                raise RuntimeError(f"the sender stopped after {got} of {size} bytes")
            got += n


def hashes(path: str) -> dict[str, Any]:
    out: dict[str, Any] = {"bytes": os.path.getsize(path)}
    for name in ("sha256", "md5", "crc32"):
        cpu0 = _cpu_s()
        if name == "crc32":
            crc = 0
            for piece in _pieces(path):
                crc = zlib.crc32(piece, crc)
        else:
            h = hashlib.new(name)
            for piece in _pieces(path):
                h.update(piece)
        out[f"{name}_cpu_s"] = _cpu_s() - cpu0
    return out


def main() -> int:
    kind, rest = sys.argv[1], sys.argv[2:]
    if kind == "tcp-recv":
        tcp_recv(int(rest[0]), int(rest[1]))
        return 0
    cpu0, t0 = _cpu_s(), time.perf_counter()
    if kind == "disk-write":
        result = disk_write(rest[0], int(rest[1]))
    else:
        result = {"disk-read": disk_read, "disk-copy": disk_copy, "tcp": tcp, "hash": hashes}[kind](rest[0])
    wall = time.perf_counter() - t0
    result.update(kind=kind, wall_s=wall, mib_s=result["bytes"] / MIB / wall, cpu_s=_cpu_s() - cpu0)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
