"""timeline.png of the driver pipeline: the driver's yaw and pitch away from the neutral pose over the video,
the off-road thresholds drawn and the events shaded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from framequeue.pipelines.driver.events import LONG, NOT_VISIBLE, SHORT
from framequeue.pipelines.outputs import Series
from framequeue.pipelines.timeline import Panel, plot_panels

EVENT_COLOURS: Final = {LONG: "#d62728", SHORT: "#e8833a", NOT_VISIBLE: "#7f7f7f"}
COLUMNS: Final = ("yaw_dev_deg", "pitch_dev_deg")


def plot_timeline(
    path: Path, series: Series, events: Sequence[Mapping[str, Any]], off_road: Mapping[str, float], title: str
) -> None:
    yaw, down = off_road["yaw_deg"], off_road["pitch_down_deg"]
    panels = [
        Panel(
            "yaw_dev_deg",
            "yaw - neutral (deg)\n+ = toward image left",
            "#1f77b4",
            ((yaw, f"+{yaw:g}"), (-yaw, f"-{yaw:g}")),
            from_zero=False,
            missing="no driver face",
        ),
        Panel(
            "pitch_dev_deg",
            "pitch - neutral (deg)\n+ = face down",
            "#9467bd",
            ((down, f"+{down:g} down"),),
            from_zero=False,
            missing="no driver face",
        ),
    ]
    plot_panels(path, series, panels, events, EVENT_COLOURS, title)
