"""What every system under test shares: the System protocol, per-job timelines, the submitter threads,
process groups, CPU accounting from /proc, and small statistics. Nothing here imports a peer library."""

from __future__ import annotations

import contextlib
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

ROOT: Final = Path(__file__).resolve().parents[2]
RESULTS: Final = ROOT / "bench" / "results"
PYTHON: Final = sys.executable
BIN: Final = Path(sys.executable).parent
_TICK: Final = os.sysconf("SC_CLK_TCK")

#: the broker servers, by the command name their processes have (PostgreSQL's backends included)
SERVER_COMMS: Final = {
    "postgres": ("postgres",),
    "redis": ("redis-server",),
    "rabbitmq": ("beam.smp", "erl_child_setup", "epmd"),
    "nats": ("nats-server",),
}

T = TypeVar("T")
R = TypeVar("R")


def log(msg: str) -> None:
    print(f"[dispatch {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- what a system under test offers the harness ------------------------------------------------------


@dataclass(frozen=True)
class Timeline:
    """One job, epoch seconds. `enqueued` is when the system recorded the job (framequeue's created_at;
    for the peers, the client's send time, as they keep no such record); `sent` is always the client's."""

    sent: float
    enqueued: float
    started: float
    finished: float


class System(Protocol):
    #: "framequeue", "celery", "dramatiq"
    system: str
    #: the broker backend ("sqlite", "postgres", "redis", "rabbitmq", "nats")
    broker: str
    #: where the job's truth lives ("sqlite", "postgres"; "" for the peers, which keep none)
    store: str
    #: a peer's configuration: "" bare, "redis-results" / "pg-results" storing results there ("" for framequeue)
    variant: str

    def start(self) -> None: ...

    def thread_setup(self) -> None:
        """Called once in each submitter thread before it submits (a connection of its own)."""
        ...

    def after_warmup(self) -> None:
        """Called once the warm-up jobs are done, before anything is measured."""
        ...

    def submit(self, tag: str) -> str:
        """Submit one no-op job; returns the handle that timelines() knows it by."""
        ...

    def submit_many(self, tags: Sequence[str]) -> list[str]:
        """Submit len(tags) no-op jobs in one call of the system's own batching API; their handles, in order."""
        ...

    def wait_done(self, handles: Sequence[str], timeout_s: float) -> None: ...

    def timelines(self, sent: dict[str, float]) -> dict[str, Timeline]:
        """handle -> timeline for the handles in `sent` (handle -> client send time)."""
        ...

    def groups(self) -> dict[str, list[int]]:
        """Component name -> its top processes (API, workers, masters); CPU is counted per process tree."""
        ...

    def failures(self) -> int: ...

    def stop(self) -> None: ...

    def cleanup(self) -> None:
        """Remove what the run created on shared servers (schemas, keys, queues, streams)."""
        ...


# -- submitters ---------------------------------------------------------------------------------------


class Submitters:
    """K persistent threads, each set up once (thread_setup), so that a warm-up reaches every one of them
    and the measured burst opens no connection. One instance per system under test."""

    def __init__(self, k: int) -> None:
        self.k = k
        self._pool = ThreadPoolExecutor(k, thread_name_prefix="submit")
        self._barrier = threading.Barrier(k)
        self._ready = threading.local()

    def run(self, setup: Callable[[], None], fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """fn over items, round-robin across all K threads at once; results in item order."""
        chunks = [list(range(i, len(items), self.k)) for i in range(self.k)]
        out: list[Any] = [None] * len(items)

        def work(idx: list[int]) -> None:
            if not getattr(self._ready, "done", False):
                try:
                    setup()
                except BaseException:
                    self._barrier.abort()
                    raise
                self._ready.done = True
            self._barrier.wait(60)  # every thread starts together: K distinct threads, no head start
            for i in idx:
                out[i] = fn(items[i])

        for fut in [self._pool.submit(work, c) for c in chunks]:
            fut.result()
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True)


# -- processes ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Procs:
    """Processes started in their own sessions with logs in files; stopped by pid, then by group."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "ab") as fh:
            proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs[name] = proc
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = self.log(name)[-2000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def log(self, name: str) -> str:
        try:
            return (self.log_dir / f"{name}.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values()]

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM to each main process (they drain), then SIGKILL to whatever is left of its group."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FQ_", "FRAMEQUEUE_", "FQB_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def wait_until(pred: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.05,
               check: Callable[[], None] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if check is not None:
            check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


# -- CPU accounting -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Proc:
    ppid: int
    comm: str
    #: CPU seconds of the process itself, and of its children that it has waited for (reaped)
    own_s: float
    reaped_s: float


def _stat(pid: int) -> _Proc | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            raw = fh.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2:].split()
    # fields after comm: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17)
    ticks = [int(x) for x in rest[11:15]]
    return _Proc(int(rest[1]), comm, (ticks[0] + ticks[1]) / _TICK, (ticks[2] + ticks[3]) / _TICK)


def _all_procs() -> dict[int, _Proc]:
    out: dict[int, _Proc] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                out[int(name)] = st
    return out


def _is_fork_server(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"multiprocessing.forkserver" in fh.read()
    except OSError:
        return False


def _tree_cpu(procs: dict[int, _Proc], roots: Iterable[int], name: str) -> dict[str, float]:
    """CPU of the trees under roots, as {name: ...}; a multiprocessing fork server in them is split out
    as "fork server" (itself) and "media children" (the short-lived processes it forked and reaped)."""
    kids: dict[int, list[int]] = {}
    for pid, proc in procs.items():
        kids.setdefault(proc.ppid, []).append(pid)
    out = {name: 0.0}
    stack, seen = list(roots), set()
    while stack:
        pid = stack.pop()
        if pid in seen or pid not in procs:
            continue
        seen.add(pid)
        proc = procs[pid]
        if _is_fork_server(pid):
            out["fork server"] = out.get("fork server", 0.0) + proc.own_s
            out["media children"] = out.get("media children", 0.0) + proc.reaped_s
        else:
            out[name] += proc.own_s + proc.reaped_s
        stack.extend(kids.get(pid, []))
    return out


def _machine_busy_s() -> float:
    with open("/proc/stat") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return (sum(parts[:8]) - idle) / _TICK


def _own_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass
class CpuSnapshot:
    at: float
    machine_s: float
    own_s: float
    groups: dict[str, float]


def cpu_snapshot(groups: dict[str, list[int]], servers: Sequence[str]) -> CpuSnapshot:
    procs = _all_procs()
    out: dict[str, float] = {}
    for name, roots in groups.items():
        for part, cpu in _tree_cpu(procs, roots, name).items():
            out[part] = out.get(part, 0.0) + cpu
    for server in servers:
        comms = SERVER_COMMS.get(server, ())
        out[f"{server} server"] = sum(p.own_s + p.reaped_s for p in procs.values() if p.comm in comms)
    return CpuSnapshot(time.monotonic(), _machine_busy_s(), _own_cpu_s(), out)


@dataclass
class CpuUse:
    wall_s: float
    #: CPU seconds by component, over the window
    by_component: dict[str, float] = field(default_factory=dict)
    #: cores busy with anything else on the machine (other sessions, other services), averaged
    background_cores: float = 0.0


def cpu_between(a: CpuSnapshot, b: CpuSnapshot) -> CpuUse:
    comps = {name: max(0.0, b.groups[name] - a.groups.get(name, 0.0)) for name in b.groups}
    comps["bench driver"] = b.own_s - a.own_s
    wall = max(1e-9, b.at - a.at)
    background = max(0.0, (b.machine_s - a.machine_s) - sum(comps.values())) / wall
    return CpuUse(wall, comps, background)


def wait_quiet(max_wait_s: float, busy_below_cores: float = 0.3) -> float:
    """Wait (up to max_wait_s) for a 1 s window in which the machine is nearly idle; returns the busy
    cores of the last window, so that a result taken on a loaded machine says so."""
    deadline = time.monotonic() + max_wait_s
    while True:
        a = _machine_busy_s()
        time.sleep(1.0)
        busy = _machine_busy_s() - a
        if busy < busy_below_cores or time.monotonic() > deadline:
            return busy


# -- statistics ---------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); nan for no values."""
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    """p50 / p90 / p99 / max of second values, in milliseconds."""
    return {f"p{q}": percentile(values, q) * 1000.0 for q in (50, 90, 99)} | {
        "max": max(values) * 1000.0 if values else math.nan, "mean": 1000.0 * sum(values) / max(1, len(values)),
    }


def rounded(value: Any, digits: int = 3) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value
