"""What a container or image header declares, read without ffmpeg: enough to refuse a hostile file before
ffmpeg decodes (and allocates) anything. Best effort: a header this cannot read yields nothing (then ffmpeg
judges a container, and `probe` refuses an image)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

#: the head read for track headers (Matroska: Tracks come before the first Cluster) or an image's frame header
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


#: JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): their segment declares the size
_JPEG_SOF: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
#: markers without a length: TEM, RST0-7 (SOI, EOI and SOS end the walk before their segments matter)
_JPEG_BARE: Final = frozenset({0x01, *range(0xD0, 0xD8)})
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"


def still_frame_size(path: Path) -> tuple[int, int] | None:
    """(width, height) a PNG's IHDR or a JPEG's first start-of-frame declares, from the file's head; None when
    the head does not say (ffmpeg would decode the image to learn it)."""
    with path.open("rb") as f:
        data = f.read(HEAD_BYTES)
    if data.startswith(_PNG_SIGNATURE):
        if data[12:16] != b"IHDR" or len(data) < 24:
            return None
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    while pos + 8 < len(data):
        if data[pos] != 0xFF:
            return None  # not at a marker: damaged
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes before the marker's code
            pos += 1
        if pos >= len(data):
            return None
        marker = data[pos]
        if marker in _JPEG_BARE:
            pos += 1
            continue
        if marker in (0xD8, 0xD9, 0xDA) or pos + 7 >= len(data):  # SOI again, EOI, or the scan: no frame header
            return None
        if marker in _JPEG_SOF:
            return int.from_bytes(data[pos + 6 : pos + 8], "big"), int.from_bytes(data[pos + 4 : pos + 6], "big")
        pos += 1 + int.from_bytes(data[pos + 1 : pos + 3], "big")
    return None


#: where a whole JPEG's end-of-image marker must be: within this many bytes of the file's end (some writers pad)
JPEG_TAIL_BYTES: Final = 4096


def jpeg_is_whole(path: Path) -> bool:
    """Whether a JPEG ends with its end-of-image marker (ffmpeg decodes a truncated one without an error, and
    fills what is missing with grey). In entropy-coded data a 0xFF byte is always stuffed, so the marker seen
    near the end is the real one."""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - JPEG_TAIL_BYTES))
        return b"\xff\xd9" in f.read(JPEG_TAIL_BYTES)
