"""Shared by the split acceptance tests (issue 17): `framequeue up` with two workers that share a long video,
the helpers that read a job's outputs back, and long videos that are hard to split (one giant GOP, damaged
packets in one segment's range). Small on purpose: low resolution and a low frame rate, long durations."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from tests.acceptance.deployment import Deployment


def start_splitting(root: Path, model_dir: Path, *, segment_s: float, **settings: Any) -> Deployment:
    """`framequeue up` with two workers, told that two workers share a long video (stop it when done)."""
    options: dict[str, Any] = {"lease_s": 20, "heartbeat_s": 2, "reap_interval_s": 1, "drain_s": 2,
                               "split_workers": 2, "segment_s": segment_s, "republish_after_s": 2, **settings}
    dep = Deployment(root, **options)
    dep.register_yolox(model_dir)
    dep.start("up", "up", "--workers", "2")
    dep.wait_ready()
    return dep


def frames_of(dep: Deployment, job_id: str, tmp: Path) -> dict[str, Any]:
    """The job's per-frame JSON, parsed."""
    path = dep.client.download(job_id, "detections", tmp / job_id)
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def video_pts(dep: Deployment, job_id: str, tmp: Path) -> tuple[list[int], float]:
    """Every decoded frame's pts of the job's annotated video in order, and the stream's time base."""
    path = dep.client.download(job_id, "video", tmp / f"{job_id}-video")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = [frame.pts for frame in container.decode(stream)]
        return pts, float(stream.time_base)


def synthetic_clip(dst: Path, *, seconds: float, fps: int, gop_frames: int, width: int = 96,
                   height: int = 64, vp8: bool = False) -> Path:
    """An H.264 MP4 (or, `vp8`, a VP8 WebM) of a moving gradient, `seconds` long at `fps`, a keyframe every
    `gop_frames` frames (no scene-cut keyframes, no B-frames or hidden frames)."""
    total = round(seconds * fps)
    ramp = np.arange(width, dtype=np.uint16)[None, :, None]
    with av.open(str(dst), "w", format="webm" if vp8 else "mp4") as out:
        video = out.add_stream("libvpx" if vp8 else "libx264", rate=Fraction(fps, 1))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        gop = str(gop_frames)
        video.options = (
            {"g": gop, "keyint_min": gop, "deadline": "realtime", "cpu-used": "8", "auto-alt-ref": "0",
             "lag-in-frames": "0"} if vp8 else
            {"preset": "ultrafast", "g": gop, "keyint_min": gop, "sc_threshold": "0", "bf": "0"}
        )
        for i in range(total):
            image = np.broadcast_to(((ramp + 3 * i) % 256).astype(np.uint8), (height, width, 3))
            for packet in video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    return dst


def damage_packets(path: Path, start_s: float, end_s: float) -> int:
    """Overwrite in place the payload of every video packet but the keyframes shown in [start_s, end_s) with
    bytes that do not decode; the container (its index, timestamps) is untouched and the keyframes still
    are (the demuxer's parser reads a key flag from the payload), so it still demuxes and cuts where it did.
    How many were damaged."""
    spans: list[tuple[int, int]] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        for packet in container.demux(stream):
            if packet.pts is None or packet.pos is None or packet.size == 0 or packet.is_keyframe:
                continue
            if start_s <= float(packet.pts * stream.time_base) < end_s:
                spans.append((packet.pos, packet.size))
    rng = np.random.default_rng(17)
    with open(path, "r+b") as f:
        for pos, size in spans:
            f.seek(pos)
            f.write(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    return len(spans)
