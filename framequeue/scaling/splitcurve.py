"""How a long video's wall time falls with the workers sharing it (issue 17): `simulate.split_wall_s` fed
with one measured split run (the split phase, each segment's processing time, the stitch phase, the
hand-offs between them, and the same video unsplit on one worker), scaled to a video of `target_minutes`.

The measured segments are repeated in order to the target's count; the split and stitch phases and the
unsplit time are scaled by target / measured length (an assumption, stated in the output: the split scans
every packet and remuxes every byte, the stitch remuxes every byte and streams every frame's JSON, both
linear in the video's length); the hand-off is the mean of the two measured ones. Each worker stands for
one one-job machine. `at_rate` is the same job with every segment at the unsplit run's rate: on a machine
other work shares, the split run's busy cores may run slower each than the unsplit run's one.

Pure: `framequeue simulate --split-measured FILE` and bench/split print what `curve` returns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from framequeue.scaling.simulate import SplitJob, split_wall_s

WORKERS = (1, 2, 8, 32, 128)


@dataclass(frozen=True)
class Measurement:
    """One measured split run and its unsplit twin, as bench/split records them (`measured` in split.json)."""

    video_s: float
    segment_s: float
    split_s: float
    stitch_s: float
    #: each segment's processing time on one worker, in segment order
    segments_s: tuple[float, ...]
    #: split committed -> first segment claimed, and last segment ended -> stitch claimed, s
    handoffs_s: tuple[float, float]
    #: the same video unsplit on one worker: claim to finish, s
    unsplit_s: float

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Measurement:
        """From a `measured` block (or a bench/split result holding one); ValueError naming what is wrong."""
        block = data.get("measured", data)
        try:
            m = cls(
                video_s=float(block["video_s"]), segment_s=float(block["segment_s"]),
                split_s=float(block["split_s"]), stitch_s=float(block["stitch_s"]),
                segments_s=tuple(float(s) for s in block["segments_s"]),
                handoffs_s=(float(block["handoffs_s"][0]), float(block["handoffs_s"][1])),
                unsplit_s=float(block["unsplit_s"]),
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ValueError(f"not a split measurement (bench/results/split.json's `measured`): {exc!r}") from None
        bad = [k for k, v in (("video_s", m.video_s), ("segment_s", m.segment_s), ("unsplit_s", m.unsplit_s))
               if not v > 0] + (["segments_s"] if not m.segments_s or min(m.segments_s) <= 0 else [])
        if bad:
            raise ValueError(f"a split measurement needs positive {', '.join(bad)}")
        return m

    def to_json(self) -> dict[str, Any]:
        return {
            "video_s": self.video_s, "segment_s": self.segment_s, "split_s": self.split_s,
            "stitch_s": self.stitch_s, "segments_s": list(self.segments_s), "handoffs_s": list(self.handoffs_s),
            "unsplit_s": self.unsplit_s,
        }


def split_job(m: Measurement, target_minutes: float) -> SplitJob:
    """The measured run scaled to a video of target_minutes cut at the measured segment length."""
    scale = target_minutes * 60 / m.video_s
    count = max(1, math.ceil(target_minutes * 60 / m.segment_s - 1e-9))
    return SplitJob(
        split_s=m.split_s * scale,
        segments_s=tuple(m.segments_s[i % len(m.segments_s)] for i in range(count)),
        stitch_s=m.stitch_s * scale,
        handoff_s=max(0.0, sum(m.handoffs_s) / 2),
    )


def at_rate(job: SplitJob, processing_s_per_video_s: float, segment_s: float) -> SplitJob:
    return replace(job, segments_s=(processing_s_per_video_s * segment_s,) * len(job.segments_s))


def curve(
    m: Measurement, target_minutes: float, sla_s: float, workers: Iterable[int] = WORKERS
) -> dict[str, Any]:
    """Wall time, speedup over the unsplit run and whether the SLA is met at each worker count (and at one
    worker per segment, past which nothing shortens the job), for a target_minutes video."""
    job = split_job(m, target_minutes)
    unsplit_s = m.unsplit_s * target_minutes * 60 / m.video_s
    a_rate = at_rate(job, m.unsplit_s / m.video_s, m.segment_s)
    count = len(job.segments_s)
    points: list[dict[str, Any]] = []
    for n in sorted({*workers, count}):
        wall_s = split_wall_s(job, n)
        points.append({
            "workers": n, "wall_s": wall_s, "speedup": unsplit_s / wall_s, "meets_sla": wall_s <= sla_s,
            "wall_s_at_unsplit_rate": split_wall_s(a_rate, n),
        })
    return {
        "target_minutes": target_minutes,
        "segments": count,
        "split_s": job.split_s,
        "stitch_s": job.stitch_s,
        "handoff_s": job.handoff_s,
        "unsplit_s": unsplit_s,
        "sla_s": sla_s,
        "points": points,
        "stops_scaling_at_workers": count,
        # past one worker per segment: split + the longest segment + stitch
        "floor_s": split_wall_s(job, count),
        "serial_s": job.split_s + job.stitch_s + 2 * job.handoff_s,
        "fewest_workers_meeting_sla": next((n for n in range(1, count + 1) if split_wall_s(job, n) <= sla_s), None),
    }


def markdown(c: Mapping[str, Any]) -> str:
    """The curve as a markdown paragraph and table."""
    fewest = c["fewest_workers_meeting_sla"]
    lines = [
        f"predicted for a {c['target_minutes']:g}-minute video ({c['segments']} segments; split {c['split_s']:.1f} s, "
        f"stitch {c['stitch_s']:.1f} s, hand-off {c['handoff_s']:.2f} s, scaled linearly with the length from the "
        f"measurement; unsplit on one worker {c['unsplit_s']:.0f} s), SLA {c['sla_s']:.0f} s:",
        "",
        "| workers | wall s | speedup vs unsplit | meets SLA | wall s, segments at the unsplit rate |",
        "|---:|---:|---:|---|---:|",
        *(f"| {p['workers']} | {p['wall_s']:.1f} | {p['speedup']:.1f} | {'yes' if p['meets_sla'] else 'no'} | "
          f"{p['wall_s_at_unsplit_rate']:.1f} |" for p in c["points"]),
        "",
        f"stops scaling at {c['stops_scaling_at_workers']} workers (one per segment): floor {c['floor_s']:.1f} s "
        f"= split + longest segment + stitch (serial part {c['serial_s']:.1f} s); fewest workers meeting the "
        f"SLA: {fewest if fewest is not None else 'none (the floor is above it)'}",
    ]
    return "\n".join(lines) + "\n"
