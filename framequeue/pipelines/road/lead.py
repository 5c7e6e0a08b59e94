"""Which tracked vehicle is the lead: the nearest one in the ego vehicle's path, switched with hysteresis.

A track is a candidate when it is a vehicle class with a known width, scores at least `min_score`, is not
cut by the left or right image edge (its width would be wrong) and is not centred in the hood band (YOLOX
puts false "car" boxes on the ego vehicle's own bonnet). It is in the path when its box's bottom-centre (where
it meets the road) is inside the ego lane, or, without one, inside the corridor |X| <= 1.5 m around the
camera's line of sight, X = (x - cx)·Z/f at its estimated distance Z.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from framequeue.pipelines.road.geometry import Camera, lateral_offset_m
from framequeue.pipelines.road.lanes import EgoLane

#: a box whose side is within this share of the frame width of the left or right edge is cut by it
EDGE_MARGIN_SHARE: Final = 0.005


@dataclass(frozen=True)
class LeadConfig:
    #: a track's detector score must reach this to be a candidate
    min_score: float = 0.35
    #: bottom share of the frame where the ego hood is
    hood_fraction: float = 0.12
    #: half width of the fallback corridor, metres
    corridor_half_width_m: float = 1.5
    #: another candidate takes over only at this share of the lead's distance or nearer (10 % nearer) ...
    switch_ratio: float = 0.9
    #: ... held this long, seconds
    switch_hold_s: float = 0.3


def is_candidate(
    box_xyxy: Sequence[float], score: float, known_class: bool, image_wh: tuple[int, int], config: LeadConfig
) -> bool:
    """Whether a track may be the lead, before the path test."""
    x1, y1, x2, y2 = box_xyxy
    width, height = image_wh
    margin = EDGE_MARGIN_SHARE * width
    if not known_class or score < config.min_score or x2 <= x1:
        return False
    if x1 <= margin or x2 >= width - margin:
        return False
    return (y1 + y2) / 2 < height * (1.0 - config.hood_fraction)


def in_path(
    box_xyxy: Sequence[float], ego_lane: EgoLane | None, camera: Camera, distance_m: float, config: LeadConfig
) -> bool:
    """Whether the box's bottom-centre is in the ego lane, or in the corridor when there is no ego lane."""
    x = (box_xyxy[0] + box_xyxy[2]) / 2
    y = box_xyxy[3]
    if ego_lane is not None:
        return ego_lane.contains(x, y)
    return abs(lateral_offset_m(x, camera, distance_m)) <= config.corridor_half_width_m


@dataclass(frozen=True)
class Candidate:
    track_id: int
    distance_m: float


class LeadSelector:
    """The lead over time: the nearest candidate in path; another takes over only when it is at least 10 %
    nearer for 0.3 s, or at once when the lead leaves the path or is lost. Pure: times are given."""

    def __init__(self, config: LeadConfig) -> None:
        self.config = config
        self.lead: int | None = None
        self._challenger: int | None = None
        self._challenge_since_s = 0.0

    def update(self, t_s: float, candidates: Sequence[Candidate]) -> int | None:
        """The lead's track id at `t_s` among the in-path candidates (None when there is none)."""
        by_id = {c.track_id: c for c in candidates}
        if not by_id:
            self.lead, self._challenger = None, None
            return None
        nearest = min(candidates, key=lambda c: (c.distance_m, c.track_id))
        current = by_id.get(self.lead) if self.lead is not None else None
        if current is None:
            self.lead, self._challenger = nearest.track_id, None
            return self.lead
        if nearest.track_id != current.track_id and nearest.distance_m <= self.config.switch_ratio * current.distance_m:
            if self._challenger != nearest.track_id:
                self._challenger, self._challenge_since_s = nearest.track_id, t_s
            if t_s - self._challenge_since_s >= self.config.switch_hold_s - 1e-6:
                self.lead, self._challenger = nearest.track_id, None
        else:
            self._challenger = None
        return self.lead
