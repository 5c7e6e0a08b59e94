"""A long video for the split tests: a real clip looped to `seconds`, scaled down and re-encoded with a
fixed GOP (closed, no B-frames), so it has keyframes every gop_s to cut at and real objects to detect."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def looped_clip(src: Path, dst: Path, *, seconds: float, fps: int = 10, gop_s: float = 2.0,
                width: int = 320, height: int = 180) -> Path:
    frames: list[np.ndarray] = []
    with av.open(str(src)) as clip:
        stream = clip.streams.video[0]
        step = max(1, round(float(stream.average_rate or fps) / fps))
        for i, frame in enumerate(clip.decode(stream)):
            if i % step == 0:
                frames.append(frame.to_ndarray(format="bgr24", width=width, height=height))
    total = round(seconds * fps)
    with av.open(str(dst), "w") as out:
        video = out.add_stream("libx264", rate=Fraction(fps, 1))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        gop = str(round(gop_s * fps))
        video.options = {"preset": "ultrafast", "g": gop, "keyint_min": gop, "sc_threshold": "0", "bf": "0"}
        for i in range(total):
            # forward then backward through the clip, so the loop has no jump
            k = i % (2 * len(frames) - 2)
            image = frames[k if k < len(frames) else 2 * len(frames) - 2 - k]
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    return dst
