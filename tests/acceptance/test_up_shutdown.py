"""SIGTERM to `framequeue up` stops its workers too (they drain), never leaving them orphaned."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.acceptance.deployment import Deployment


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and " Z " not in Path(f"/proc/{pid}/stat").read_text()


def test_sigterm_to_up_stops_its_workers(tmp_path: Path) -> None:
    dep = Deployment(tmp_path, drain_s=2)
    try:
        up = dep.start("up", "up", "--workers", "2")
        dep.wait_ready()
        deadline = time.monotonic() + 30
        while len(workers := _children(up.pid)) < 2:
            assert time.monotonic() < deadline, "up did not start its 2 workers"
            time.sleep(0.2)
        os.kill(up.pid, signal.SIGTERM)  # the process alone, as a service manager or the demo sends it
        assert up.wait(30) == 0
        deadline = time.monotonic() + 15
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(w) for w in workers), "workers outlived `framequeue up`"
        assert "stopping workers" in dep.log("up")
    finally:
        dep.stop()
