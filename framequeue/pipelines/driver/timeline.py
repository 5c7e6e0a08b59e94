"""timeline.png of the driver pipeline: the driver's head yaw and pitch over the video, the neutral pose and the
off-road thresholds around it drawn, the events shaded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from framequeue.pipelines.driver.events import LONG, NOT_VISIBLE, SHORT
from framequeue.pipelines.outputs import Series
from framequeue.pipelines.timeline import Panel, plot_panels

EVENT_COLOURS: Final = {LONG: "#d62728", SHORT: "#e8833a", NOT_VISIBLE: "#7f7f7f"}
COLUMNS: Final = ("yaw_deg", "pitch_deg")


def plot_timeline(
    path: Path,
    series: Series,
    events: Sequence[Mapping[str, Any]],
    off_road: Mapping[str, float],
    neutral_deg: tuple[float, float],
    title: str,
) -> None:
    """The driver's yaw and pitch (degrees), with the neutral pose and the off-road limits around it."""
    yaw0, pitch0 = neutral_deg
    yaw, down = off_road["yaw_deg"], off_road["pitch_down_deg"]
    panels = [
        Panel(
            "yaw_deg",
            "yaw (deg)\n+ = toward image left",
            "#1f77b4",
            ((yaw0 + yaw, f"neutral +{yaw:g}"), (yaw0, "neutral"), (yaw0 - yaw, f"neutral -{yaw:g}")),
            from_zero=False,
            missing="no driver face",
        ),
        Panel(
            "pitch_deg",
            "pitch (deg)\n+ = face down",
            "#9467bd",
            ((pitch0 + down, f"neutral +{down:g} (down)"), (pitch0, "neutral")),
            from_zero=False,
            missing="no driver face",
        ),
    ]
    plot_panels(path, series, panels, events, EVENT_COLOURS, title)
