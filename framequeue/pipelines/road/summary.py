"""What the road pipeline says about a whole video from its per-frame records: the summary block of
`road.json` and the timeline. Both are made from the records (not from the sink's inner state), so a split
job's stitch (framequeue.pipelines.road.join) makes them from the joined records exactly as one run does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from framequeue.pipelines.road.events import COLLISION, FOLLOWING
from framequeue.pipelines.road.timeline import COLUMNS, Series, plot_timeline


class RoadTally:
    """Counts and the lead's series over the records of a video, in order."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(("frames", "two_lanes", "ego_lane", "lead", "time_gap"), 0)
        self.track_ids: set[int] = set()
        self.series = Series(COLUMNS)

    def add(self, record: Mapping[str, Any]) -> None:
        """One `road.json` frame record."""
        lead = record.get("lead")
        gap = lead.get("time_gap_s") if lead else None
        c = self.counts
        c["frames"] += 1
        c["two_lanes"] += len(record["lanes"]) >= 2
        c["ego_lane"] += record["ego_lane"]["source"] == "lanes"
        c["lead"] += lead is not None
        c["time_gap"] += gap is not None
        self.track_ids.update(track["id"] for track in record["tracks"])
        self.series.append(
            record["t_s"], (lead["distance_m"], gap, lead["ttc_s"]) if lead else (None, None, None)
        )

    def summary(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        frames = max(1, self.counts["frames"])
        return {
            "frames": self.counts["frames"],
            "share_two_lanes": round(self.counts["two_lanes"] / frames, 4),
            "share_ego_lane": round(self.counts["ego_lane"] / frames, 4),
            "share_lead": round(self.counts["lead"] / frames, 4),
            "share_time_gap": round(self.counts["time_gap"] / frames, 4),
            "tracks": len(self.track_ids),
            "events": {kind: sum(e["type"] == kind for e in events) for kind in (FOLLOWING, COLLISION)},
        }

    def timeline(
        self,
        path: Path,
        events: Sequence[Mapping[str, Any]],
        rules: Mapping[str, Any],
        video: Mapping[str, Any],
    ) -> None:
        """timeline.png; `rules` holds the resolved `following` and `collision` rules (road.json's head)."""
        rule = rules["following"]
        title = (
            f"lead vehicle over {video.get('frames')} frames · following rule '{rule['profile']}': time gap "
            f"< {rule['max_time_gap_s']:g} s for {rule['min_duration_s']:g} s above {rule['min_speed_mps']:g} m/s"
        )
        plot_timeline(path, self.series, events, rule, rules["collision"], title)
