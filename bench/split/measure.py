"""What the job records say: wall time, the split and stitch phases (the parent's attempt history: the
attempt that ended `split`, then the one that stitched), each segment's processing time (its own record),
and the hand-offs between them. Times are the server's (created_at, started_at, ended_at, finished_at)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def epoch(iso: str | None) -> float:
    if iso is None:
        return float("nan")
    return dt.datetime.fromisoformat(iso).timestamp()


def _attempt_s(attempt: dict[str, Any]) -> float:
    return epoch(attempt["ended_at"]) - epoch(attempt["started_at"])


def unsplit(run: dict[str, Any]) -> dict[str, Any]:
    job = run["job"]
    return {
        "status": job["status"],
        "frames": job["progress"]["frames_total"],
        "video_s": job["video_s"],
        "wall_s": epoch(job["finished_at"]) - epoch(job["created_at"]),
        "queue_s": epoch(job["started_at"]) - epoch(job["created_at"]),
        "processing_s": epoch(job["finished_at"]) - epoch(job["started_at"]),
    }


def split(run: dict[str, Any]) -> dict[str, Any]:
    job, segments = run["job"], sorted(run["segments"], key=lambda s: s["segment_index"])
    history = job["attempt_history"]
    split_attempt = next(a for a in history if a["outcome"] == "split")
    stitch_attempt = history[-1]
    if stitch_attempt is split_attempt:
        raise RuntimeError(f"job {job['id']} ended {job['status']} without a stitch attempt")
    segs = []
    for s in segments:
        last = s["attempt_history"][-1]
        segs.append({
            "index": s["segment_index"], "status": s["status"], "attempts": s["attempts"], "worker": last["worker"],
            "frames": s["progress"]["frames_total"], "started": epoch(last["started_at"]),
            "ended": epoch(last["ended_at"]), "processing_s": _attempt_s(last),
        })
    split_end = epoch(split_attempt["ended_at"])
    last_segment_end = max(s["ended"] for s in segs)
    wall_s = epoch(job["finished_at"]) - epoch(job["created_at"])
    split_s, stitch_s = _attempt_s(split_attempt), _attempt_s(stitch_attempt)
    return {
        "status": job["status"],
        "frames": job["progress"]["frames_total"],
        "video_s": job["video_s"],
        "wall_s": wall_s,
        "queue_s": epoch(split_attempt["started_at"]) - epoch(job["created_at"]),
        "split_s": split_s,
        "stitch_s": stitch_s,
        "overhead_share": (split_s + stitch_s) / wall_s,
        # split committed -> the first segment claimed; the last segment ended -> the stitch claimed
        "split_to_segment_s": min(s["started"] for s in segs) - split_end,
        "segment_to_stitch_s": epoch(stitch_attempt["started_at"]) - last_segment_end,
        "segments": [{k: v for k, v in s.items() if k not in ("started", "ended")} for s in segs],
        "workers_busy_s": {w: sum(s["processing_s"] for s in segs if s["worker"] == w)
                           for w in sorted({s["worker"] for s in segs})},
    }
