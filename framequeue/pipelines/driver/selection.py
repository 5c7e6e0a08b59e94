"""Which face is the driver's: the track with the most face-seconds weighted by size, so the largest and most
persistent face wins (a passenger in the back is smaller, someone walking past does not stay). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

#: another track takes over only when its score passes the driver's by this factor
SWITCH_RATIO: Final = 1.2


class DriverSelector:
    def __init__(self) -> None:
        #: track id -> face-seconds weighted by the face's share of the frame's area
        self.scores: dict[int, float] = {}
        self.driver: int | None = None

    def update(self, covers_s: float, area_shares: Mapping[int, float]) -> int | None:
        """Fold in one frame (standing for `covers_s` seconds) with each visible face track's box area as a share
        of the frame; the driver's track id if its face is visible in this frame, else None."""
        for track_id, share in area_shares.items():
            self.scores[track_id] = self.scores.get(track_id, 0.0) + share * covers_s
        if not area_shares:
            return None
        best = min(area_shares, key=lambda tid: (-self.scores[tid], tid))
        current = self.scores.get(self.driver, 0.0) if self.driver is not None else 0.0
        if self.driver is None or self.scores[best] > SWITCH_RATIO * current:
            self.driver = best
        return self.driver if self.driver in area_shares else None
