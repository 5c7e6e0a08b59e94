"""Paths, machine facts, subprocess helpers and small statistics shared by the benchmark modules."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
BENCH: Final = ROOT / "bench"
#: ignored by git (.gitignore): raw JSON, the Markdown section, logs, and the synthetic clips
RESULTS: Final = BENCH / "results"
CLIPS: Final = RESULTS / "clips"
SHARED: Final = Path(os.environ.get("FQ_SHARED_DIR") or ROOT.parent / "shared").resolve()
DASHCAM: Final = SHARED / "media" / "solidWhiteRight.mp4"
MODEL_DIR: Final = SHARED / "models" / "yolox_nano"
MODEL: Final = MODEL_DIR / "yolox_nano.onnx"
CLASSES: Final = MODEL_DIR / "coco_classes.txt"
PYTHON: Final = sys.executable
CORES: Final = os.cpu_count() or 1


def run_module_json(module: str, *args: str, timeout_s: float = 900.0) -> dict[str, Any]:
    """Run `python -m bench.<module> ARGS` in a fresh process; its last stdout line is a JSON object."""
    proc = subprocess.run(
        [PYTHON, "-m", f"bench.{module}", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench.{module} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def rounded(value: Any, digits: int = 3) -> Any:
    """JSON-friendly copy with floats rounded."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def loadavg() -> float:
    """1-minute load average: other work on the machine skews every number here."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def _cpu_jiffies() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return sorted(f for f in flags if f in {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"})
    return []


def machine_info() -> dict[str, Any]:
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    info: dict[str, Any] = {
        "nproc": int(nproc) if nproc.isdigit() else CORES,
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "memory_gib": round(mem_kb / 1024**2, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    for pkg in ("onnxruntime", "av", "opencv-python-headless", "numpy"):
        info[pkg] = version(pkg)
    import av

    info["ffmpeg_libs_in_pyav"] = str(av.library_versions.get("libavcodec", ""))
    return info


# -- measurement windows: how much of the machine was ours ---------------------------------------------

_TICK: Final = os.sysconf("SC_CLK_TCK")
#: machine-wide busy share of all cores under which the machine counts as quiet
QUIET_BUSY_SHARE: Final = 0.12


def _own_rusage_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Window:
    """Wall time, machine-wide busy cores and our own CPU over one measurement.

    foreign_cores = cores busy with work that is not this benchmark (other users' tests, say): every
    result carries it, since 0.5 foreign cores on a 2-core machine moves throughput by 25 %.
    `extra_own_s` counts CPU of our processes that are not yet reaped (the `framequeue up` tree).
    """

    def __init__(self, extra_own_s: Callable[[], float] | None = None) -> None:
        self._extra = extra_own_s or (lambda: 0.0)
        self._t0 = self._busy0 = self._own0 = 0.0

    def __enter__(self) -> Window:
        self._t0 = time.perf_counter()
        self._busy0 = _cpu_jiffies()[0] / _TICK
        self._own0 = _own_rusage_s() + self._extra()
        self.result: dict[str, float] = {}
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._t0
        busy = _cpu_jiffies()[0] / _TICK - self._busy0
        own = _own_rusage_s() + self._extra() - self._own0
        self.result = {
            "wall_s": wall,
            "busy_cores": busy / wall,
            "own_cores": own / wall,
            "foreign_cores": max(0.0, (busy - own) / wall),
            "loadavg_1m": loadavg(),
        }


def wait_quiet(max_wait_s: float = 60.0, log: Callable[[str], None] = print) -> float:
    """Wait (up to max_wait_s) until the machine has been nearly idle for 2 s; returns seconds waited."""
    t0 = time.monotonic()
    quiet = 0
    while time.monotonic() - t0 < max_wait_s:
        busy0, total0 = _cpu_jiffies()
        time.sleep(1.0)
        busy1, total1 = _cpu_jiffies()
        quiet = quiet + 1 if (busy1 - busy0) / max(1, total1 - total0) < QUIET_BUSY_SHARE else 0
        if quiet >= 2:
            return time.monotonic() - t0
    log(f"  (machine still busy after {max_wait_s:.0f} s: measuring anyway, see foreign_cores)")
    return time.monotonic() - t0


def replace_section(doc: Path, title: str, section: str) -> None:
    """Replace the section of DOC headed TITLE (up to the next '## ' heading), or append it; the rest of
    the file is left as it is (re-read just before writing)."""
    text = doc.read_text() if doc.is_file() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip("\n") == title), None)
    if start is None:
        doc.write_text(text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n")
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    doc.write_text("".join(lines[:start]) + section.rstrip("\n") + "\n" + ("\n" + tail if tail else ""))
