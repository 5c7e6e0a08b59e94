"""timeline.png: the lead's distance, time gap and TTC over the video, with the thresholds drawn and the event
intervals shaded — the picture a safety manager looks at first.

Values are kept per frame in growing float32 arrays (12 bytes a frame: a 3-hour 30 fps video is ~4 MB);
matplotlib (Agg, no display) draws them once at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from framequeue.pipelines.outputs import Series
from framequeue.pipelines.road.events import COLLISION, FOLLOWING

__all__ = ["Series", "plot_timeline"]

#: colours of the event types' shading
EVENT_COLOURS: Final = {FOLLOWING: "#e8833a", COLLISION: "#d62728"}
#: figure size in inches at 100 dpi
FIGURE_IN: Final = (12.0, 7.5)


def _missing(name: str, series: Series) -> str:
    """Why a panel has no value at all."""
    if not np.isfinite(series.column("distance_m")).any():
        return "no lead vehicle in the ego lane"
    if name == "time_gap_s":
        return "no time gap: the job gave no ego speed (speed_mps or speed_track)"
    return "the lead never closed in below 10 s" if name == "ttc_s" else "no value"


def plot_timeline(
    path: Path,
    series: Series,
    events: Sequence[Mapping[str, Any]],
    following: Mapping[str, Any],
    collision: Mapping[str, float],
    title: str,
) -> None:
    """Write the PNG: distance (m), time gap (s) with the following threshold, TTC (s) with the warning
    threshold; event intervals shaded on every panel."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    fig = Figure(figsize=FIGURE_IN, dpi=100, layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    t = series.t_s
    panels = [
        ("distance_m", "distance to lead (m)", None, "#1f77b4"),
        ("time_gap_s", "time gap (s)", float(following["max_time_gap_s"]), "#2ca02c"),
        ("ttc_s", "TTC (s)", float(collision["max_ttc_s"]), "#9467bd"),
    ]
    for ax, (name, label, threshold, colour) in zip(axes, panels, strict=True):
        values = series.column(name)
        ax.plot(t, values, color=colour, linewidth=1.4)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        finite = values[np.isfinite(values)]
        if threshold is not None:
            ax.axhline(threshold, color="#d62728", linestyle="--", linewidth=1.0)
            ax.annotate(
                f"{threshold:g} s",
                (1.0, threshold),
                xycoords=("axes fraction", "data"),
                ha="right",
                va="bottom",
                color="#d62728",
                fontsize=8,
            )
        top = max(float(finite.max()) if finite.size else 0.0, (threshold or 0.0) * 1.5, 1.0)
        ax.set_ylim(0.0, top * 1.05)
        if not finite.size:
            ax.text(
                0.5,
                0.5,
                "no value" if name != "time_gap_s" else "no value (needs the ego speed)",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="#888888",
            )
        for event in events:
            ax.axvspan(event["start_s"], event["end_s"], color=EVENT_COLOURS.get(event["type"], "#999999"), alpha=0.25)
    end = float(t[-1]) if len(t) else 1.0
    axes[-1].set_xlim(0.0, max(end, 1e-3))
    axes[-1].set_xlabel("video time (s)")
    handles = [Patch(color=c, alpha=0.35, label=name.replace("_", " ")) for name, c in EVENT_COLOURS.items()]
    axes[0].legend(handles=handles, loc="upper right", fontsize=8)
    axes[0].set_title(title, fontsize=10)
    fig.savefig(str(path), format="png")
