"""timeline.png of the road pipeline: the lead's distance, time gap and TTC over the video, with the thresholds
drawn and the event intervals shaded — the picture a safety manager looks at first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from framequeue.pipelines.outputs import Series
from framequeue.pipelines.road.events import COLLISION, FOLLOWING
from framequeue.pipelines.timeline import Panel, plot_panels

__all__ = ["Series", "plot_timeline"]

#: colours of the event types' shading
EVENT_COLOURS: Final = {FOLLOWING: "#e8833a", COLLISION: "#d62728"}
COLUMNS: Final = ("distance_m", "time_gap_s", "ttc_s")


def plot_timeline(
    path: Path,
    series: Series,
    events: Sequence[Mapping[str, Any]],
    following: Mapping[str, Any],
    collision: Mapping[str, float],
    title: str,
) -> None:
    """Write the PNG: distance (m), time gap (s) with the following threshold, TTC (s) with the warning one."""
    no_lead = not np.isfinite(series.column("distance_m")).any()
    why = "no lead vehicle in the ego lane" if no_lead else None
    gap, ttc = float(following["max_time_gap_s"]), float(collision["max_ttc_s"])
    panels = [
        Panel("distance_m", "distance to lead (m)", "#1f77b4", missing=why or "no value"),
        Panel(
            "time_gap_s",
            "time gap (s)",
            "#2ca02c",
            ((gap, f"{gap:g} s"),),
            missing=why or "no time gap: the job gave no ego speed (speed_mps or speed_track)",
        ),
        Panel(
            "ttc_s", "TTC (s)", "#9467bd", ((ttc, f"{ttc:g} s"),), missing=why or "the lead never closed in below 10 s"
        ),
    ]
    plot_panels(path, series, panels, events, EVENT_COLOURS, title)
