"""What one fork-server child costs, by what the fork server preloaded: `python -m bench.dispatch.forkcost
[--children N] MODULE,MODULE...` starts a fork server with those modules preloaded, runs N empty children
one after another, and prints one JSON line: CPU ms per child (the fork server plus the children it
reaped), wall ms per child, and the fork server's resident size."""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def empty() -> None:
    pass


def _fork_server() -> tuple[float, float]:
    """(CPU seconds incl. reaped children, RSS MB) of this process's fork server."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"multiprocessing.forkserver" not in (entry / "cmdline").read_bytes():
                continue
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) != os.getpid():
                continue
            cpu = sum(int(x) for x in fields[11:15]) / _TICK
            rss = int((entry / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
            return cpu, rss
        except (OSError, ValueError):
            continue
    raise RuntimeError("no fork server found")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("preload", nargs="?", default="")
    ap.add_argument("--children", type=int, default=100)
    args = ap.parse_args()
    preload = [m for m in args.preload.split(",") if m]
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(preload)
    first = ctx.Process(target=empty)  # starts the fork server
    first.start()
    first.join()
    cpu0, rss = _fork_server()
    t0 = time.perf_counter()
    for _ in range(args.children):
        p = ctx.Process(target=empty)
        p.start()
        p.join()
    wall = time.perf_counter() - t0
    cpu1, _ = _fork_server()
    print(json.dumps({"preload": preload, "children": args.children, "fork_server_rss_mb": rss,
                      "cpu_ms_per_child": 1000.0 * (cpu1 - cpu0) / args.children,
                      "wall_ms_per_child": 1000.0 * wall / args.children}))


if __name__ == "__main__":
    main()
