"""Synthetic media for tests: small real H.264 files made with PyAV, and hostile look-alikes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_video(path: Path, *, frames: int = 30, width: int = 320, height: int = 240, fps: int = 25) -> Path:
    """An H.264 MP4 with a bright rectangle moving over a gradient."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps, 1))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(fps)}
        ramp = np.linspace(0, 255, width, dtype=np.uint8)
        for i in range(frames):
            img = np.empty((height, width, 3), np.uint8)
            img[:] = ramp[None, :, None]
            x = (i * 7) % max(1, width - 60)
            img[height // 3 : height // 3 + 50, x : x + 60] = (40, 40, 230)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def random_bytes(path: Path, size: int = 64 * 1024, seed: int = 7) -> Path:
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def pdf_named_mp4(path: Path) -> Path:
    body = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n" + b"0" * 4000 + b"\n%%EOF\n"
    path.write_bytes(body)
    return path


def truncated(src: Path, path: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path
