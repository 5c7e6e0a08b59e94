"""What a container header declares, read without ffmpeg: enough to refuse a hostile file before ffmpeg
decodes (and allocates) anything. Best effort: a header this cannot read yields nothing, and ffmpeg judges."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

#: the Matroska head read for track headers (Tracks come before the first Cluster)
HEAD_BYTES: Final = 1024 * 1024
#: EBML ids: Segment, Tracks, TrackEntry, Video (descended into); PixelWidth, PixelHeight; Cluster (stop)
_SEGMENT, _TRACKS, _TRACK_ENTRY, _VIDEO = 0x18538067, 0x1654AE6B, 0xAE, 0xE0
_PIXEL_WIDTH, _PIXEL_HEIGHT, _CLUSTER = 0xB0, 0xBA, 0x1F43B675
_MASTERS: Final = frozenset({_SEGMENT, _TRACKS, _TRACK_ENTRY, _VIDEO})


def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int, bool]:
    """(value, next position, all value bits set: an unknown size) of the EBML variable-size integer at pos."""
    first = data[pos]
    length = 9 - first.bit_length() if first else 9
    if length > 8 or pos + length > len(data):
        raise ValueError("bad EBML integer")
    value = int.from_bytes(data[pos : pos + length], "big")
    marker = 1 << (7 * length)
    unknown = value == 2 * marker - 1
    return (value if keep_marker else value - marker), pos + length, unknown


def matroska_frame_sizes(path: Path) -> list[tuple[int, int]]:
    """(PixelWidth, PixelHeight) of each video track in the Tracks of a Matroska/WebM file's head."""
    with path.open("rb") as f:
        data = f.read(HEAD_BYTES)
    try:
        return list(_sizes(data, 0, len(data)))
    except (ValueError, IndexError):
        return []


def _sizes(data: bytes, pos: int, end: int) -> Iterator[tuple[int, int]]:
    found: dict[int, int] = {}
    while pos < end:
        element, pos, _ = _vint(data, pos, keep_marker=True)
        size, pos, unknown = _vint(data, pos, keep_marker=False)
        if element == _CLUSTER:
            return
        stop = end if unknown else min(end, pos + size)
        if element in _MASTERS:
            yield from _sizes(data, pos, stop)
        elif element in (_PIXEL_WIDTH, _PIXEL_HEIGHT) and size <= 8:
            found[element] = int.from_bytes(data[pos:stop], "big")
        pos = stop
    if _PIXEL_WIDTH in found and _PIXEL_HEIGHT in found:
        yield found[_PIXEL_WIDTH], found[_PIXEL_HEIGHT]
