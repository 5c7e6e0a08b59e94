"""The scaling curve: `framequeue.scaling.simulate.split_wall_s` fed with the measured segment times and
overheads, for a video of `target_minutes` cut into segments of `segment_s`.

The measured segments are repeated in order to the target's count (a 30-minute measurement uses its own
30); the split and stitch phases, and the unsplit run, are scaled by target / measured minutes (the split
scans every packet and remuxes every byte, the stitch remuxes every byte and streams every frame's JSON);
the hand-off is the mean of the two measured ones. Each worker stands for one one-core machine.
`at_rate` gives the same job with every segment at one rate (run A's seconds per video second): on a machine
other work shares, B's two busy cores may run slower per core than A's one, and this shows how much.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from framequeue.scaling.simulate import SplitJob, split_wall_s

WORKERS = (1, 2, 8, 32, 128)


def split_job(measured: dict[str, Any], measured_minutes: float, target_minutes: float, segment_s: float) -> SplitJob:
    scale = target_minutes / measured_minutes
    seg = [s["processing_s"] for s in measured["segments"]]
    count = max(1, math.ceil(target_minutes * 60 / segment_s - 1e-9))
    return SplitJob(
        split_s=measured["split_s"] * scale,
        segments_s=tuple(seg[i % len(seg)] for i in range(count)),
        stitch_s=measured["stitch_s"] * scale,
        handoff_s=max(0.0, (measured["split_to_segment_s"] + measured["segment_to_stitch_s"]) / 2),
    )


def at_rate(job: SplitJob, processing_s_per_video_s: float, segment_s: float) -> SplitJob:
    return replace(job, segments_s=(processing_s_per_video_s * segment_s,) * len(job.segments_s))


def curve(job: SplitJob, unsplit_s: float, sla_s: float, at_a_rate: SplitJob | None = None) -> dict[str, Any]:
    count = len(job.segments_s)
    points: list[dict[str, Any]] = [{"workers": n, "wall_s": split_wall_s(job, n)} for n in sorted({*WORKERS, count})]
    if at_a_rate is not None:
        for p in points:
            p["wall_s_at_a_rate"] = split_wall_s(at_a_rate, p["workers"])
    for p in points:
        p["speedup"] = unsplit_s / p["wall_s"]
        p["meets_sla"] = p["wall_s"] <= sla_s
    floor_s = split_wall_s(job, count)
    sla_workers = next((n for n in range(1, count + 1) if split_wall_s(job, n) <= sla_s), None)
    return {
        "segments": count,
        "split_s": job.split_s,
        "stitch_s": job.stitch_s,
        "handoff_s": job.handoff_s,
        "unsplit_s": unsplit_s,
        "sla_s": sla_s,
        "points": points,
        # past one worker per segment nothing shortens the job: split + the longest segment + stitch
        "stops_scaling_at_workers": count,
        "floor_s": floor_s,
        "serial_s": job.split_s + job.stitch_s + 2 * job.handoff_s,
        "fewest_workers_meeting_sla": sla_workers,
    }
