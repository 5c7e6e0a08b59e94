"""Reporting the autoscaler's decisions: one log line and one JSON line per decision (the decisions file),
and a picture of a decisions file. Not scaling/report.py, which compares policies over a simulated day."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["Tick", "default_decisions_path", "plot_decisions", "read_decisions", "tail_decisions", "write_decision"]

#: a decisions file past this size is renamed to `<name>.1` (replacing the previous one) before the next line
ROTATE_BYTES = 4 * 1024 * 1024
#: the most bytes tail_decisions reads from the end of a file (one line is about 300 bytes)
TAIL_BYTES = 256 * 1024

log = logging.getLogger("framequeue.autoscale")


@dataclass
class Tick:
    """One decision, as logged and written to the decisions file."""

    t: float
    waiting: int
    in_flight: int
    #: workers the supervisor held before the decision (the policy's current_workers)
    current: int
    desired: int
    endpoints: int
    reason: str
    #: workers that are capacity after the decision was applied (alive, not draining)
    live: int = 0
    #: workers that got SIGTERM and have not exited yet
    draining: int = 0
    started: list[int] = field(default_factory=list)
    stopping: list[int] = field(default_factory=list)
    exited: list[int] = field(default_factory=list)
    crashed: list[int] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {"t": round(self.t, 3), "time": datetime.fromtimestamp(self.t, UTC).isoformat(timespec="seconds"),
                "waiting": self.waiting, "in_flight": self.in_flight, "current": self.current,
                "desired": self.desired, "endpoints": self.endpoints, "reason": self.reason, "live": self.live,
                "draining": self.draining, "started": self.started, "stopping": self.stopping,
                "exited": self.exited, "crashed": self.crashed, "killed": self.killed}

    def line(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in (("started", self.started), ("stopping", self.stopping),
                                                  ("crashed", self.crashed), ("killed", self.killed)) if v)
        return (f"decision waiting={self.waiting} in_flight={self.in_flight} current={self.current} "
                f"desired={self.desired} endpoints={self.endpoints} draining={self.draining}{extra} "
                f"reason={self.reason}")


def write_decision(tick: Tick, path: Path | None) -> None:
    """Log the decision, and append it to the decisions file when there is one."""
    log.info("%s", tick.line())
    if path is not None:
        _rotate(path)
        with path.open("a") as fh:
            fh.write(json.dumps(tick.record(), separators=(",", ":")) + "\n")


def default_decisions_path(home: Path) -> Path:
    """Where `framequeue autoscale` writes its decisions unless told otherwise; where the API reads them."""
    return home / "autoscale.jsonl"


def _rotate(path: Path, max_bytes: int = ROTATE_BYTES) -> None:
    try:
        if path.stat().st_size >= max_bytes:
            path.replace(path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass


def tail_decisions(path: Path, count: int, max_bytes: int = TAIL_BYTES) -> list[dict[str, Any]] | None:
    """The last `count` decisions of a decisions file, oldest first, reading at most max_bytes from its end;
    None when there is no such file (the autoscaler has not run here). A line cut off by a crash or by the
    read's start is skipped."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            start = max(0, size - max_bytes)
            fh.seek(start)
            data = fh.read(size - start)
    except FileNotFoundError:
        return None
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # the first line may begin before the window
    decisions: list[dict[str, Any]] = []
    for line in lines:
        try:
            decision = json.loads(line)
        except ValueError:
            continue
        if isinstance(decision, dict):
            decisions.append(decision)
    return decisions[-count:] if count > 0 else []


def read_decisions(path: Path) -> Iterator[dict[str, Any]]:
    with path.open() as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a line cut off by a crash


def plot_decisions(decisions: Path, out: Path) -> None:
    """Backlog (waiting, in-flight) and workers (desired, draining) over time, from a decisions file."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise RuntimeError("the plot needs matplotlib: pip install 'framequeue[sim]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(read_decisions(decisions))
    t0 = rows[0]["t"] if rows else 0.0
    t = [r["t"] - t0 for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True, dpi=80)
    top.plot(t, [r["waiting"] + r["in_flight"] for r in rows], drawstyle="steps-post", label="outstanding")
    top.plot(t, [r["waiting"] for r in rows], drawstyle="steps-post", label="waiting")
    top.plot(t, [r["in_flight"] for r in rows], drawstyle="steps-post", label="in flight")
    top.set_ylabel("jobs")
    top.legend(loc="upper right")
    top.set_title(f"framequeue autoscale: {len(rows)} decisions")
    bottom.plot(t, [r["desired"] for r in rows], drawstyle="steps-post", label="workers (desired)")
    bottom.plot(t, [r.get("draining", 0) for r in rows], drawstyle="steps-post", label="draining")
    bottom.plot(t, [r.get("endpoints", 0) for r in rows], drawstyle="steps-post", linestyle=":", label="endpoints")
    bottom.set_ylabel("workers")
    bottom.set_xlabel("seconds since the first decision")
    bottom.legend(loc="upper right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
