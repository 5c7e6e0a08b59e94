"""timeline.png for the overlay pipelines: per-frame values over the video in stacked panels, their thresholds
drawn and the event intervals shaded. matplotlib (Agg, no display) draws once at the end of a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from framequeue.pipelines.outputs import Series

#: figure width in inches at 100 dpi, and the height of one panel
FIGURE_WIDTH_IN: Final = 12.0
PANEL_HEIGHT_IN: Final = 2.5
_THRESHOLD: Final = "#d62728"


@dataclass(frozen=True)
class Panel:
    #: the Series column drawn
    column: str
    label: str
    colour: str
    #: horizontal lines with their labels
    thresholds: tuple[tuple[float, str], ...] = ()
    #: the y axis starts at 0 (distances, times) rather than fitting the data (angles)
    from_zero: bool = True
    #: what the panel says when the column has no value at all
    missing: str = "no value"


def plot_panels(
    path: Path,
    series: Series,
    panels: Sequence[Panel],
    events: Sequence[Mapping[str, Any]],
    event_colours: Mapping[str, str],
    title: str,
) -> None:
    """Write the PNG: one panel per column over video time, every event shaded on every panel."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    fig = Figure(figsize=(FIGURE_WIDTH_IN, 0.5 + PANEL_HEIGHT_IN * len(panels)), dpi=100, layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    t = series.t_s
    for ax, panel in zip(axes, panels, strict=True):
        values = series.column(panel.column)
        ax.plot(t, values, color=panel.colour, linewidth=1.4)
        ax.set_ylabel(panel.label)
        ax.grid(True, alpha=0.3)
        finite = values[np.isfinite(values)]
        for level, text in panel.thresholds:
            ax.axhline(level, color=_THRESHOLD, linestyle="--", linewidth=1.0)
            ax.annotate(
                text,
                (0.005, level),
                xycoords=("axes fraction", "data"),
                ha="left",
                va="bottom",
                color=_THRESHOLD,
                fontsize=8,
            )
        levels = [level for level, _ in panel.thresholds]
        if panel.from_zero:
            top = max(float(finite.max()) if finite.size else 0.0, 1.5 * max(levels, default=0.0), 1.0)
            ax.set_ylim(0.0, top * 1.05)
        else:
            span = [*levels, *(finite.tolist() if finite.size else [-1.0, 1.0])]
            low, high = min(span), max(span)
            pad = 0.1 * max(high - low, 1.0)
            ax.set_ylim(low - pad, high + pad)
        if not finite.size:
            ax.text(0.5, 0.5, panel.missing, transform=ax.transAxes, ha="center", va="center", color="#888888")
        for event in events:
            ax.axvspan(event["start_s"], event["end_s"], color=event_colours.get(event["type"], "#999999"), alpha=0.25)
    end = float(t[-1]) if len(t) else 1.0
    axes[-1].set_xlim(0.0, max(end, 1e-3))
    axes[-1].set_xlabel("video time (s)")
    handles = [Patch(color=c, alpha=0.35, label=name.replace("_", " ")) for name, c in event_colours.items()]
    axes[0].legend(handles=handles, loc="upper right", fontsize=8)
    axes[0].set_title(title, fontsize=10)
    fig.savefig(str(path), format="png")
