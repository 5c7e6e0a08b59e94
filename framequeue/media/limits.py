"""Caps on what a media file may ask of the machine, checked by `probe` before large allocations (hostile
media)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MediaLimits:
    """Caps checked before large allocations (hostile media)."""

    max_pixels: int = 3840 * 2160
    max_duration_s: float = 3 * 3600.0
    max_frames: int = 1_000_000
    max_streams: int = 16
