"""Crafted hostile media for the tests: Matroska files written element by element (so a header can declare
any size, duration or frame rate) and playlists disguised as videos."""

from __future__ import annotations

import struct
from pathlib import Path

#: a minimal baseline JPEG would do, but a block that does not decode keeps ffmpeg from overriding the header
_BLOCK = b"\xff\xd8\xff\xd9"


def _vint(n: int) -> bytes:
    for length in range(1, 8):
        if n < (1 << (7 * length)) - 1:
            return ((1 << (7 * length)) | n).to_bytes(length, "big")
    return b"\x01" + n.to_bytes(7, "big")


def _el(element: int, payload: bytes | int | float | str | list[bytes]) -> bytes:
    if isinstance(payload, bool):
        raise TypeError(payload)
    if isinstance(payload, int):
        payload = payload.to_bytes(max(1, (payload.bit_length() + 7) // 8), "big")
    elif isinstance(payload, float):
        payload = struct.pack(">d", payload)
    elif isinstance(payload, str):
        payload = payload.encode()
    elif isinstance(payload, list):
        payload = b"".join(payload)
    return element.to_bytes((element.bit_length() + 7) // 8, "big") + _vint(len(payload)) + payload


def matroska(path: Path, *, width: int = 64, height: int = 64, duration_s: float = 1.0, frame_ms: int = 40,
             frames: int = 3) -> Path:
    """An MJPEG-in-Matroska file whose header declares `width`x`height`, `duration_s` and one frame every
    `frame_ms` (DefaultDuration), holding `frames` tiny blocks."""
    ebml = _el(0x1A45DFA3, [_el(0x4286, 1), _el(0x42F7, 1), _el(0x42F2, 4), _el(0x42F3, 8),
                            _el(0x4282, "matroska"), _el(0x4287, 4), _el(0x4285, 2)])
    info = _el(0x1549A966, [_el(0x2AD7B1, 1_000_000), _el(0x4489, duration_s * 1000.0),
                            _el(0x4D80, "fq-tests"), _el(0x5741, "fq-tests")])
    video = _el(0xE0, [_el(0xB0, width), _el(0xBA, height)])
    track = _el(0xAE, [_el(0xD7, 1), _el(0x73C5, 1), _el(0x83, 1), _el(0x86, "V_MJPEG"),
                       _el(0x23E383, frame_ms * 1_000_000), video])
    blocks = [_el(0xE7, 0)] + [
        _el(0xA3, _vint(1) + struct.pack(">h", i * frame_ms) + b"\x80" + _BLOCK) for i in range(frames)
    ]
    segment_unknown_size = b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff"
    path.write_bytes(ebml + segment_unknown_size + info + _el(0x1654AE6B, [track]) + _el(0x1F43B675, blocks))
    return path


def hls_playlist(path: Path, target: Path) -> Path:
    path.write_text(f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n{target}\n"
                    "#EXT-X-ENDLIST\n")
    return path


def ffconcat_list(path: Path, target: Path) -> Path:
    path.write_text(f"ffconcat version 1.0\nfile '{target}'\n")
    return path
