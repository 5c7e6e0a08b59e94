"""One transfer of the object-store benchmark, in a fresh process so that its peak RSS is its own.

    python -m bench.storage_child SYSTEM OP --endpoint URL --bucket B --prefix P --key K --file PATH
        [--server-pid PID]

SYSTEM: `fq` (framequeue's S3ObjectStore), `fq-create` (the same, `create_only=True`; upload only),
`fq-sha256` (the same with AWS_CHECKSUM_ALGORITHM=SHA256, a diagnostic; upload only),
`boto3` (boto3's transfer manager, its defaults), `boto3-matched` (the transfer manager with framequeue's
8 MiB parts, 4 at a time), `boto3-oneget` (the transfer manager without multipart: one streaming GET).
OP: `upload` (PATH → object) or `download` (object → PATH).

The client is imported and warmed up (a tiny PUT and GET: threads, connection pool, credentials) before
the baseline; then the peak RSS is reset (`/proc/self/clear_refs`), and the transfer alone is timed. A
download is fsync'ed after its timed window, so its dirty pages do not spill into the next measurement.
Prints one JSON line: wall and CPU seconds of this process, peak RSS growth, and the server's CPU seconds
over the same window (read from /proc/PID/stat) when its pid is given.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

#: moto accepts any credentials; obstore insists on having some
ACCESS_KEY, SECRET_KEY, REGION = "fqbench", "fqbench-secret", "us-east-1"
MIB = 1024 * 1024
#: what the framequeue side reads from the file, or from its reader, per call
FILE_CHUNK_BYTES = MIB
#: what a download writes to the file per call: boto3's io_chunksize, so both clients write alike. On this
#: machine's kernel, write() of exactly 1 MiB at 1 MiB-aligned offsets costs ~5x the CPU of 256 KiB or
#: 2 MiB pieces (bench/storage_ref.py disk-write shows it), which would charge framequeue for the kernel
WRITE_PIECE_BYTES = 256 * 1024
_TICK = os.sysconf("SC_CLK_TCK")

SYSTEMS = ("fq", "fq-create", "fq-sha256", "boto3", "boto3-matched", "boto3-oneget")


def status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread (boto3's pool, obstore's Rust runtime)
    return usage.ru_utime + usage.ru_stime


def proc_cpu_s(pid: int) -> float:
    """utime + stime of one process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (idle and iowait excluded)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / _TICK


def fq_url(endpoint: str, bucket: str, prefix: str) -> str:
    where = urllib.parse.quote(endpoint, safe="")
    return f"s3://{ACCESS_KEY}:{SECRET_KEY}@{bucket}/{prefix}?endpoint={where}&region={REGION}"


def _framequeue(args: argparse.Namespace) -> tuple[Callable[[], None], Callable[[], None]]:
    from framequeue.storage.s3 import S3ObjectStore

    if args.system == "fq-sha256":  # obstore reads it: CreateMultipartUpload names SHA-256 checksums
        os.environ["AWS_CHECKSUM_ALGORITHM"] = "SHA256"
    objects = S3ObjectStore.from_url(fq_url(args.endpoint, args.bucket, args.prefix))
    warm = f"warm-up-{os.getpid()}"
    objects.put(warm, b"x")
    objects.get(warm)
    objects.delete(warm)
    create_only = args.system == "fq-create"

    def upload() -> None:
        buf = bytearray(FILE_CHUNK_BYTES)
        view = memoryview(buf)
        with open(args.file, "rb", buffering=0) as src, objects.open_write(args.key, create_only=create_only) as fh:
            while n := src.readinto(buf):
                fh.write(view[:n])

    def download() -> None:
        # read(1 MiB), as the worker's copy (shutil.copyfileobj) and the API's output stream read
        with objects.open_read(args.key) as fh, open(args.file, "wb", buffering=0) as dst:
            while chunk := fh.read(FILE_CHUNK_BYTES):
                view = memoryview(chunk)
                for at in range(0, len(view), WRITE_PIECE_BYTES):
                    dst.write(view[at : at + WRITE_PIECE_BYTES])

    return upload, download


def _boto3(args: argparse.Namespace) -> tuple[Callable[[], None], Callable[[], None]]:
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    client = boto3.client(
        "s3", endpoint_url=args.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, config=Config(s3={"addressing_style": "path"}),
    )
    warm = f"{args.prefix}/warm-up-{os.getpid()}"
    client.put_object(Bucket=args.bucket, Key=warm, Body=b"x")
    client.get_object(Bucket=args.bucket, Key=warm)["Body"].read()
    client.delete_object(Bucket=args.bucket, Key=warm)
    config = TransferConfig()  # the defaults: 8 MiB threshold and parts, 10 threads
    if args.system == "boto3-matched":
        config = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=4)
    elif args.system == "boto3-oneget":  # no multipart: one PUT, or one streaming GET, as framequeue reads
        config = TransferConfig(multipart_threshold=1024**4)
    key = f"{args.prefix}/{args.key}"

    def upload() -> None:
        client.upload_file(args.file, args.bucket, key, Config=config)

    def download() -> None:
        client.download_file(args.bucket, key, args.file, Config=config)

    return upload, download


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("system", choices=SYSTEMS)
    ap.add_argument("op", choices=("upload", "download"))
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--key", required=True, help="relative to the prefix")
    ap.add_argument("--file", required=True)
    ap.add_argument("--server-pid", type=int, default=0)
    args = ap.parse_args(argv)

    upload, download = _boto3(args) if args.system.startswith("boto3") else _framequeue(args)
    transfer = upload if args.op == "upload" else download

    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # VmHWM := the current RSS
    base_kib = status_kib("VmRSS")
    server0 = proc_cpu_s(args.server_pid) if args.server_pid else 0.0
    busy0, cpu0, t0 = machine_busy_s(), own_cpu_s(), time.perf_counter()
    transfer()
    wall = time.perf_counter() - t0
    cpu, busy = own_cpu_s() - cpu0, machine_busy_s() - busy0
    server = proc_cpu_s(args.server_pid) - server0 if args.server_pid else float("nan")
    peak_kib = status_kib("VmHWM")
    fsync_s = 0.0
    if args.op == "download":
        t1 = time.perf_counter()
        fd = os.open(args.file, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_s = time.perf_counter() - t1
    size = os.path.getsize(args.file)
    result: dict[str, Any] = {
        "system": args.system, "op": args.op, "bytes": size,
        "wall_s": wall, "mib_s": size / MIB / wall,
        "client_cpu_s": cpu, "server_cpu_s": server,
        # machine-wide busy cores over the window that were neither this client nor the server
        "foreign_cores": max(0.0, (busy - cpu - (server if args.server_pid else 0.0)) / wall),
        "baseline_rss_mib": base_kib / 1024, "peak_rss_growth_mib": (peak_kib - base_kib) / 1024,
        "fsync_after_s": fsync_s,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
