"""A real video split and put back together (issue 17's media half): the dashcam clip re-encoded with a
2 s GOP is planned, cut by packet remux and each segment decoded with its lead-in, as segment jobs do;
the frames after each lead-in are the unsplit decode's very frames, and they add up to the whole. The
segments' outputs, encoded stitchable, join into one seamless MP4."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from framequeue.media.decode import decode_frames
from framequeue.media.encode import VideoEncoder
from framequeue.media.keyframes import plan, scan
from framequeue.media.limits import MediaLimits
from framequeue.media.probe import probe
from framequeue.media.remux import concat, cut

pytestmark = pytest.mark.slow

GOP = 50  # 2 s at 25 fps
LOOPS = 2


def reencode_with_gop(src: Path, dst: Path) -> Path:
    """`src` looped LOOPS times, re-encoded with a keyframe every GOP frames exactly (B-frames kept)."""
    with av.open(str(src)) as inp:
        frames = [f.to_ndarray(format="bgr24") for f in inp.decode(video=0)]
    height, width = frames[0].shape[:2]
    with av.open(str(dst), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "bf": "2", "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0"}
        stream.codec_context.thread_count = 2
        for _ in range(LOOPS):
            for image in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


def digest(image: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest()


def test_split_segments_decode_to_the_unsplit_frames(dashcam_video: Path, tmp_path: Path) -> None:
    src = reencode_with_gop(dashcam_video, tmp_path / "gop2.mp4")
    limits = MediaLimits()
    info = probe(src, limits)
    whole = [(digest(f.image), f.time_s) for f in decode_frames(src, info, threads=2)]

    index = scan(src)
    assert index.frames == len(whole) == 221 * LOOPS
    assert index.keyframes_s == pytest.approx([2.0 * k for k in range(len(whole) // GOP + 1)])
    np.testing.assert_allclose(index.frame_times_s, [t for _, t in whole], atol=1e-9)

    plans = plan(index, segment_s=4.0, lead_in_s=1.0)
    # 17.68 s: segments at 0, 4, 8, 12 s; the 1.68 s tail joins the last one
    assert [p.start_s for p in plans] == pytest.approx([0.0, 4.0, 8.0, 12.0])
    assert [p.lead_in_start_s for p in plans] == pytest.approx([0.0, 2.0, 6.0, 10.0])

    total = 0
    for p in plans:
        piece = tmp_path / f"segment{p.index}.mp4"
        # as the split phase cuts: the last segment's end_s is the video's duration, not a keyframe
        result = cut(src, piece, p.lead_in_start_s, p.end_s)
        assert result.frames == p.lead_in_frames + p.frames
        decoded = list(decode_frames(piece, probe(piece, limits), threads=2))
        assert len(decoded) == p.lead_in_frames + p.frames
        for frame in decoded[p.lead_in_frames :]:
            g = p.first_frame + frame.index - p.lead_in_frames
            assert digest(frame.image) == whole[g][0], f"segment {p.index}: frame {g} differs from the unsplit decode"
            assert frame.time_s + p.lead_in_start_s == pytest.approx(whole[g][1], abs=1e-6)
        # the lead-in frames are the unsplit frames before the segment (the warm-up sees what it would have)
        for frame in decoded[: p.lead_in_frames]:
            g = p.first_frame - p.lead_in_frames + frame.index
            assert digest(frame.image) == whole[g][0]
        total += p.frames
    assert total == len(whole)


def test_split_outputs_stitch_into_one_video(dashcam_video: Path, tmp_path: Path) -> None:
    src = reencode_with_gop(dashcam_video, tmp_path / "gop2.mp4")
    limits = MediaLimits()
    info = probe(src, limits)
    plans = plan(scan(src), segment_s=4.0, lead_in_s=1.0)
    outputs = []
    for p in plans:
        piece = tmp_path / f"segment{p.index}.mp4"
        cut(src, piece, p.lead_in_start_s, p.end_s)
        out = tmp_path / f"out{p.index}.mp4"
        # as a segment job writes its annotated output: its own frames only, with global pts
        lead_in_pts = round(Fraction(p.lead_in_start_s) / info.time_base)
        with VideoEncoder(
            out, info.resolution_wh, info.rate, info.time_base, preset="ultrafast", stitchable=True
        ) as enc:
            for frame in decode_frames(piece, probe(piece, limits), threads=2):
                if frame.index >= p.lead_in_frames:
                    enc.write(frame.image, lead_in_pts + frame.pts)
        outputs.append(out)
    joined = tmp_path / "joined.mp4"
    assert concat(outputs, joined) == info.frames_declared
    stitched = probe(joined, limits)
    assert (stitched.width, stitched.height, stitched.rate) == (info.width, info.height, info.rate)
    times = [f.time_s for f in decode_frames(joined, stitched, threads=2)]
    assert len(times) == info.frames_declared
    np.testing.assert_allclose(np.diff(times), 1 / 25, atol=1e-6)
