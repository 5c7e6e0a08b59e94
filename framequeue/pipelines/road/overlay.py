"""The road overlay on one frame: ego lane, lane lines, tracked vehicles, the lead with its numbers, a
head-up line and the banner of an active event. Sizes scale with the frame height (readable from 480p to
1080p and beyond); `draw_road(scene, view) -> scene` draws in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from framequeue.media.draw import BANNER, draw_banner, draw_segments

__all__ = ["BANNER", "LeadView", "RoadView", "TrackView", "draw_road", "draw_segments", "format_clock", "gap_colour",
           "lead_segments"]

#: frame height at which lines are 2 px and text is 0.55 of the font's base size
REFERENCE_HEIGHT_PX: Final = 720
_FONT: Final = cv2.FONT_HERSHEY_SIMPLEX
_WHITE: Final = (255, 255, 255)
#: BGR colours
EGO_FILL: Final = (90, 200, 40)
LANE_LINE: Final = (40, 220, 250)
TRACK_BOX: Final = (220, 170, 60)
GAP_GREEN: Final = (60, 190, 40)
GAP_AMBER: Final = (0, 165, 255)
GAP_RED: Final = (40, 40, 225)
GAP_UNKNOWN: Final = (170, 170, 170)
#: opacity of the ego lane's fill
EGO_ALPHA: Final = 0.28
#: time-gap colour bands, seconds: green at or above the first, amber down to the second, red below
GAP_GREEN_S: Final = 2.0
GAP_RED_S: Final = 1.0


@dataclass(frozen=True)
class TrackView:
    track_id: int
    class_name: str
    box_xyxy: tuple[float, float, float, float]


@dataclass(frozen=True)
class LeadView:
    track_id: int
    box_xyxy: tuple[float, float, float, float]
    distance_m: float | None
    time_gap_s: float | None
    ttc_s: float | None


@dataclass(frozen=True)
class RoadView:
    """Everything drawn on one frame."""

    t_s: float
    speed_mps: float | None
    lanes: Sequence[npt.NDArray[np.float64]] = ()
    #: the ego lane's polygon, or None
    ego_polygon: npt.NDArray[np.float64] | None = None
    tracks: Sequence[TrackView] = ()
    lead: LeadView | None = None
    #: texts of the events in progress
    banners: Sequence[str] = field(default_factory=tuple)
    #: draw track ids; a split job's segments draw none (their ids are joined only after drawing)
    show_ids: bool = True


def gap_colour(time_gap_s: float | None) -> tuple[int, int, int]:
    if time_gap_s is None:
        return GAP_UNKNOWN
    if time_gap_s >= GAP_GREEN_S:
        return GAP_GREEN
    return GAP_AMBER if time_gap_s >= GAP_RED_S else GAP_RED


def lead_segments(lead: LeadView, show_id: bool = True) -> list[str]:
    """The lead's label, segment by segment: distance, time gap, TTC (each when known)."""
    parts = []
    if lead.distance_m is not None:
        parts.append(f"{lead.distance_m:.1f} m")
    if lead.time_gap_s is not None:
        parts.append(f"{lead.time_gap_s:.1f} s")
    if lead.ttc_s is not None:
        parts.append(f"TTC {lead.ttc_s:.1f} s")
    return parts or [f"#{lead.track_id}" if show_id else "lead"]


def format_clock(t_s: float) -> str:
    """mm:ss.cc, rounded to the hundredth before splitting (59.999 s is 01:00.00, never 00:60.00)."""
    minutes, centis = divmod(round(max(0.0, t_s) * 100), 6000)
    return f"{minutes:02d}:{centis // 100:02d}.{centis % 100:02d}"


def draw_road(scene: npt.NDArray[np.uint8], view: RoadView) -> npt.NDArray[np.uint8]:
    """Draw `view` on HxWx3 BGR `scene` in place and return it."""
    scale = scene.shape[0] / REFERENCE_HEIGHT_PX
    thin = max(1, round(2 * scale))
    font = max(0.4, 0.55 * scale)
    if view.ego_polygon is not None and len(view.ego_polygon) >= 3:
        # vehicles stay untinted: the lane is filled around them
        boxes = [t.box_xyxy for t in view.tracks] + ([view.lead.box_xyxy] if view.lead is not None else [])
        _fill(scene, view.ego_polygon, EGO_FILL, EGO_ALPHA, boxes)
    for points in view.lanes:
        cv2.polylines(scene, [np.rint(points).astype(np.int32)], False, LANE_LINE, thin, cv2.LINE_AA)
    lead_id = view.lead.track_id if view.lead is not None else None
    for track in view.tracks:
        if track.track_id == lead_id:
            continue
        x1, y1, x2, y2 = (round(v) for v in track.box_xyxy)
        cv2.rectangle(scene, (x1, y1), (x2, y2), TRACK_BOX, thin, cv2.LINE_AA)
        label = f"{track.class_name} #{track.track_id}" if view.show_ids else track.class_name
        draw_segments(scene, [label], (x1, y1), TRACK_BOX, 0.85 * font)
    if view.lead is not None:
        colour = gap_colour(view.lead.time_gap_s)
        x1, y1, x2, y2 = (round(v) for v in view.lead.box_xyxy)
        cv2.rectangle(scene, (x1, y1), (x2, y2), colour, 3 * thin, cv2.LINE_AA)
        draw_segments(scene, lead_segments(view.lead, view.show_ids), (x1, y1), colour, font)
    speed = "speed n/a" if view.speed_mps is None else f"{view.speed_mps:.1f} m/s ({3.6 * view.speed_mps:.0f} km/h)"
    draw_segments(
        scene, [speed, format_clock(view.t_s)], (round(8 * scale), round(8 * scale)), (40, 40, 40), font, below=True
    )
    top = round(8 * scale)
    for text in view.banners:
        top = draw_banner(scene, text, top, 1.3 * font) + round(6 * scale)
    return scene


def _fill(
    scene: npt.NDArray[np.uint8],
    polygon: npt.NDArray[np.float64],
    colour: tuple[int, int, int],
    alpha: float,
    holes_xyxy: Sequence[tuple[float, float, float, float]] = (),
) -> None:
    """Blend a filled polygon over the scene except inside `holes_xyxy`, touching only its bounding box."""
    pts = np.rint(polygon).astype(np.int32)
    height, width = scene.shape[:2]
    x0, y0 = max(0, int(pts[:, 0].min())), max(0, int(pts[:, 1].min()))
    x1, y1 = min(width, int(pts[:, 0].max()) + 1), min(height, int(pts[:, 1].max()) + 1)
    if x1 <= x0 or y1 <= y0:
        return
    roi = scene[y0:y1, x0:x1]
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(mask, [pts - (x0, y0)], 255, cv2.LINE_8)
    for hx1, hy1, hx2, hy2 in holes_xyxy:
        cv2.rectangle(mask, (round(hx1) - x0, round(hy1) - y0), (round(hx2) - x0, round(hy2) - y0), 0, cv2.FILLED)
    # (1 - alpha) x scene + alpha x colour, the colour added as a per-channel scalar (no tint image to fill)
    blended = cv2.addWeighted(roi, 1.0 - alpha, roi, 0.0, 0.0)
    b, g, r = (alpha * c for c in colour)
    cv2.add(blended, (b, g, r, 0.0), dst=blended)  # type: ignore[call-overload]
    cv2.copyTo(blended, mask, roi)
