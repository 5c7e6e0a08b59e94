"""A day of video arrivals and their processing times, drawn from a seeded RNG (deterministic for a seed).

Processing times come from BENCHMARKS.md (`make bench`, 2026-11-23): the synthetic 60 s 1280x720 30 fps
clip ran at 43.3 frames/s end to end on one worker (41.0-43.3 frames/s across pool configurations and with
several videos queued), i.e. 41.6 s for a 60 s clip; CPU costs moved by about 10 % between runs. Here a
video lasts a lognormal time (median 60 s, sigma 0.5, clipped to 5-240 s: the benchmark's longest clip), has
30 frames a second, and is processed at a normal 43.3 +- 5 % frames/s (clipped to 38-48), plus the 0.17 s of
per-job overhead measured (submit -> first frame 0.15 s, commit 0.02 s).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["DailyProfile", "Video", "day_of_videos", "processing_s"]

#: frames per second processed for a 720p30 clip (BENCHMARKS.md, synthetic 60 s, framequeue default pool)
MEASURED_FPS = 43.3
#: per-job overhead outside the frames (submit -> first frame decoded + commit), seconds
OVERHEAD_S = 0.17
SOURCE_FPS = 30.0
DAY_S = 86_400.0


@dataclass(frozen=True)
class Video:
    #: seconds since local midnight of the simulated day (negative: the warm-up before it)
    arrival_s: float
    #: seconds one worker needs for it
    service_s: float


@dataclass(frozen=True)
class DailyProfile:
    """Arrival rate over a day: `peak_share` of the videos in [peak_start_h, peak_start_h + peak_hours),
    shaped as a half sine inside (busiest mid-window), flat outside; interpolated linearly between hours."""

    peak_share: float = 0.7
    peak_start_h: int = 8
    peak_hours: int = 9

    def hourly_shares(self) -> list[float]:
        inside = [0.5 + math.sin(math.pi * (i + 0.5) / self.peak_hours) for i in range(self.peak_hours)]
        total_inside = sum(inside)
        off = (1.0 - self.peak_share) / (24 - self.peak_hours)
        shares = [off] * 24
        for i, w in enumerate(inside):
            shares[(self.peak_start_h + i) % 24] = self.peak_share * w / total_inside
        return shares

    def rate_per_s(self, t_s: float, videos_per_day: float) -> float:
        """Arrivals per second at t_s (seconds since midnight; periodic)."""
        shares = self.hourly_shares()
        x = (t_s / 3600.0 - 0.5) % 24.0
        i = int(x)
        frac = x - i
        share = shares[i] * (1 - frac) + shares[(i + 1) % 24] * frac
        return videos_per_day * share / 3600.0

    def peak_rate_per_s(self, videos_per_day: float) -> float:
        return videos_per_day * max(self.hourly_shares()) / 3600.0


def processing_s(rng: random.Random) -> float:
    duration_s = min(max(rng.lognormvariate(math.log(60.0), 0.5), 5.0), 240.0)
    fps = min(max(rng.gauss(MEASURED_FPS, 0.05 * MEASURED_FPS), 38.0), 48.0)
    return duration_s * SOURCE_FPS / fps + OVERHEAD_S


def day_of_videos(
    videos_per_day: float, seed: int, profile: DailyProfile | None = None, warmup_s: float = 3600.0
) -> list[Video]:
    """Poisson arrivals (thinning) from -warmup_s to the end of the day, sorted by arrival."""
    profile = profile or DailyProfile()
    rng = random.Random(seed)
    rate_max = profile.peak_rate_per_s(videos_per_day) * 1.01
    t = -warmup_s
    videos: list[Video] = []
    while True:
        t += rng.expovariate(rate_max)
        if t >= DAY_S:
            return videos
        if rng.random() * rate_max <= profile.rate_per_s(t, videos_per_day):
            videos.append(Video(t, processing_s(rng)))
