"""The long input: the dashcam clip resized to 1280x720 30 fps, played forwards then backwards, encoded once
as a 60 s base (GOP 60 frames = 2 s, bench.clips' recipe), then its packets repeated to the length wanted
(closed GOPs: a plain remux with shifted timestamps, seconds instead of a long encode).

Cached under ~/.cache/framequeue/bench/ (FQ_BENCH_CACHE overrides), never in the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench import clips
from bench.common import DASHCAM

BASE_S = clips.BASE_SECONDS


def cache_dir() -> Path:
    return Path(os.environ.get("FQ_BENCH_CACHE") or Path.home() / ".cache" / "framequeue" / "bench")


def long_clip(minutes: float, src: Path = DASHCAM) -> Path:
    """The cached clip of `minutes` (rounded to whole 60 s bases), made if missing; returns its path."""
    repeats = max(1, round(minutes * 60 / BASE_S))
    base = cache_dir() / f"dashcam-pingpong_{clips.WIDTH}x{clips.HEIGHT}_{clips.FPS}fps_{BASE_S}s_{clips.RECIPE}.mp4"
    if not base.is_file():
        base.parent.mkdir(parents=True, exist_ok=True)
        part = base.with_suffix(".part.mp4")
        clips._encode(src, part, BASE_S)
        part.replace(base)
    if repeats == 1:
        return base
    path = base.with_name(base.name.replace(f"_{BASE_S}s_", f"_{repeats * BASE_S}s_"))
    if not path.is_file():
        part = path.with_suffix(".part.mp4")
        clips._repeat(base, part, repeats)
        part.replace(path)
    return path
