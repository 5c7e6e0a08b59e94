"""The floor no pipeline can beat: decoding alone, no conversion, no model, no encode.

With the ffmpeg CLI: `ffmpeg -hide_banner -i FILE -f null -` (default threads), timed from outside.
Without it (the bench target installs it, but it may be missing): PyAV decode-only with
thread_type="AUTO" (ffmpeg's own default: frame threads on every core), which the report says.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import av


def ffmpeg_path() -> str | None:
    return shutil.which("ffmpeg")


def ffmpeg_decode(path: Path) -> dict[str, Any]:
    exe = ffmpeg_path()
    if exe is None:
        raise FileNotFoundError("ffmpeg")
    cmd = [exe, "-hide_banner", "-i", str(path), "-f", "null", "-"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    counts = re.findall(r"frame=\s*(\d+)", proc.stderr)
    frames = int(counts[-1]) if counts else 0
    return {"method": "ffmpeg CLI", "command": " ".join(["ffmpeg", *cmd[1:]]), "frames": frames, "wall_s": wall,
            "fps": frames / wall}


def pyav_decode(path: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    frames = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            frames += 1
    wall = time.perf_counter() - t0
    return {"method": 'PyAV decode-only, thread_type="AUTO"', "frames": frames, "wall_s": wall,
            "fps": frames / wall}


def ffmpeg_version() -> str | None:
    exe = ffmpeg_path()
    if exe is None:
        return None
    first = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False).stdout.splitlines()
    return first[0] if first else None
