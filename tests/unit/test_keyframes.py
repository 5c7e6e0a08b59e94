"""Keyframe index and split plan: packets to cut points (pure), cut points to segments (pure), and a scan of
real synthetic video."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from framequeue.errors import CorruptMedia, UnsupportedMedia
from framequeue.media.keyframes import Packet, SegmentPlan, VideoIndex, index_packets, plan, scan
from tests.mediagen import make_video, random_bytes, truncated

MS = Fraction(1, 1000)


def index_of(keyframes_s: list[float], duration_s: float, fps: int = 10) -> VideoIndex:
    """An index of a constant-rate video (no B-frames) whose keyframes sit on the given frames."""
    n = round(duration_s * fps)
    key_frames = {round(k * fps) for k in keyframes_s}
    step_ms = 1000 // fps
    return index_packets([Packet(i * step_ms, i * step_ms, i in key_frames) for i in range(n)], MS, Fraction(fps))


def starts(plans: list[SegmentPlan]) -> list[float]:
    return [p.start_s for p in plans]


@pytest.mark.parametrize(
    ("keyframes_s", "duration_s", "segment_s", "expected_starts"),
    [
        # keyframes every 2 s, exact multiples of 60 s
        ([2.0 * k for k in range(90)], 180.0, 60.0, [0.0, 60.0, 120.0]),
        # jittered keyframes: the nearest to each multiple (61.3 beats 58.1; 119.1 beats 121.5)
        ([0.0, 30.2, 58.1, 61.3, 90.0, 119.1, 121.5, 150.0], 180.0, 60.0, [0.0, 61.3, 119.1]),
        # a tie goes to the earlier keyframe
        ([0.0, 59.0, 61.0], 120.0, 60.0, [0.0, 59.0]),
        # one giant GOP: one segment
        ([0.0], 600.0, 60.0, [0.0]),
        # a giant GOP with one more keyframe: the keyframes it has, never mid-GOP
        ([0.0, 400.0], 600.0, 60.0, [0.0, 400.0]),
        # short tail (20 s < 30 s) merged into the previous segment
        ([2.0 * k for k in range(70)], 140.0, 60.0, [0.0, 60.0]),
        # a tail of exactly min_segment_s stays its own segment
        ([2.0 * k for k in range(75)], 150.0, 60.0, [0.0, 60.0, 120.0]),
        # a video shorter than one segment
        ([0.0, 2.0, 4.0], 10.0, 60.0, [0.0]),
        # two cut points close together: the short segment between them is merged
        ([0.0, 59.0, 61.0, 119.0, 121.0], 180.0, 60.0, [0.0, 59.0, 119.0]),
    ],
)
def test_plan_cut_points(
    keyframes_s: list[float], duration_s: float, segment_s: float, expected_starts: list[float]
) -> None:
    index = index_of(keyframes_s, duration_s)
    plans = plan(index, segment_s=segment_s)
    assert starts(plans) == pytest.approx(expected_starts)
    # segments tile the video: contiguous times, frame counts add up, every start a cut point
    assert plans[-1].end_s == pytest.approx(duration_s)
    assert [p.end_s for p in plans[:-1]] == [p.start_s for p in plans[1:]]
    assert sum(p.frames for p in plans) == index.frames
    assert [p.first_frame for p in plans] == [sum(q.frames for q in plans[:k]) for k in range(len(plans))]
    assert all(p.start_s in index.keyframes_s for p in plans)
    assert [p.index for p in plans] == list(range(len(plans)))


@pytest.mark.parametrize(
    ("lead_in_s", "keyframes_s", "expected_lead_starts", "expected_lead_frames"),
    [
        # 2 s GOPs, 1 s lead-in: the keyframe 2 s before each start
        (1.0, [2.0 * k for k in range(90)], [0.0, 58.0, 118.0], [0, 20, 20]),
        # a lead-in that is exactly a GOP
        (2.0, [2.0 * k for k in range(90)], [0.0, 58.0, 118.0], [0, 20, 20]),
        (0.0, [2.0 * k for k in range(90)], [0.0, 60.0, 120.0], [0, 0, 0]),
        # sparse keyframes: the lead-in reaches back to the previous cut point
        (1.0, [0.0, 60.0, 120.0], [0.0, 0.0, 60.0], [0, 600, 600]),
    ],
)
def test_plan_lead_in(
    lead_in_s: float, keyframes_s: list[float], expected_lead_starts: list[float], expected_lead_frames: list[int]
) -> None:
    plans = plan(index_of(keyframes_s, 180.0), segment_s=60.0, lead_in_s=lead_in_s)
    assert [p.lead_in_start_s for p in plans] == pytest.approx(expected_lead_starts)
    assert [p.lead_in_frames for p in plans] == expected_lead_frames
    assert [p.frames for p in plans] == [600, 600, 600]


def test_plan_min_segment_s_is_a_knob() -> None:
    index = index_of([2.0 * k for k in range(70)], 140.0)
    assert starts(plan(index, segment_s=60.0, min_segment_s=10.0)) == [0.0, 60.0, 120.0]
    assert starts(plan(index, segment_s=60.0, min_segment_s=25.0)) == [0.0, 60.0]


def test_b_frames_reordered_by_pts() -> None:
    # decode order I P B B P B B | I P B B ... with pts in frame units (33 ms at 30 fps, time base 1/30)
    order = [0, 3, 1, 2, 6, 4, 5]
    packets = []
    for gop in range(4):
        for j, p in enumerate(order):
            pts = gop * 7 + p
            packets.append(Packet(pts + 100, gop * 7 + j + 98, j == 0))
    index = index_packets(packets, Fraction(1, 30), Fraction(30))
    assert index.frames == 28
    np.testing.assert_allclose(index.frame_times_s, np.arange(28) / 30)
    assert index.keyframes_s == pytest.approx([0.0, 7 / 30, 14 / 30, 21 / 30])
    assert index.duration_s == pytest.approx(28 / 30)
    plans = plan(index, segment_s=0.25, lead_in_s=0.1, min_segment_s=0.1)
    assert starts(plans) == pytest.approx([0.0, 7 / 30, 14 / 30, 21 / 30])
    assert [p.first_frame for p in plans] == [0, 7, 14, 21]
    assert [p.lead_in_frames for p in plans] == [0, 7, 7, 7]


def test_open_gop_keyframe_is_not_a_cut_point() -> None:
    # the second keyframe (pts 4) is followed in decode order by pictures shown before it (pts 2, 3)
    pts_in_decode_order = [(0, True), (1, False), (4, True), (2, False), (3, False), (5, False), (6, True), (7, False)]
    index = index_packets([Packet(p, None, k) for p, k in pts_in_decode_order], Fraction(1, 10), None)
    assert index.keyframes_s == pytest.approx([0.0, 0.6])
    assert index.fps == 10


@pytest.mark.parametrize(
    ("packets", "message"),
    [
        ([], "no frames"),
        ([Packet(0, 0, False), Packet(1, 1, False)], "no keyframe"),
        ([Packet(1, 1, True), Packet(0, 0, False)], "first frame is not a keyframe"),
        ([Packet(0, 0, True), Packet(0, 1, False)], "share a timestamp"),
    ],
)
def test_index_refuses_broken_streams(packets: list[Packet], message: str) -> None:
    with pytest.raises(CorruptMedia, match=message):
        index_packets(packets, MS, Fraction(25))


def test_scan_synthetic_video(tmp_path: Path) -> None:
    path = make_video(tmp_path / "v.mp4", frames=100, fps=25)  # a keyframe every 25 frames (g=25)
    index = scan(path)
    assert index.frames == 100
    assert index.fps == 25
    assert index.duration_s == pytest.approx(4.0)
    np.testing.assert_allclose(index.frame_times_s, np.arange(100) / 25)
    assert index.keyframes_s[0] == 0.0
    assert set(index.keyframes_s) >= {0.0, 1.0, 2.0, 3.0}


def test_scan_matches_decoded_frames(tmp_path: Path) -> None:
    # x264's default has B-frames: pts differ from dts; the scanned times are the decoded frames' times
    path = tmp_path / "b.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(30000, 1001))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "medium", "g": "12", "bf": "3"}
        for i in range(60):
            img = np.full((48, 64, 3), (i * 37) % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with av.open(str(path)) as container:
        decoded = [f.time for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        dts_differs = any(p.pts != p.dts for p in container.demux(video=0) if p.pts is not None)
    assert dts_differs
    index = scan(path)
    np.testing.assert_allclose(index.frame_times_s, np.asarray(decoded) - decoded[0], atol=1e-9)
    assert index.fps == Fraction(30000, 1001)


def test_scan_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMedia):
        scan(random_bytes(tmp_path / "x.mp4"))
    good = make_video(tmp_path / "v.mp4", frames=50)
    with pytest.raises(CorruptMedia):
        scan(truncated(good, tmp_path / "t.mp4", 0.3))


def test_giant_gop_video_is_one_segment(tmp_path: Path) -> None:
    # 20 s at 10 fps with one keyframe (x264 keyint infinite, no scene cuts): never cut mid-GOP
    path = tmp_path / "giant.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "ultrafast", "x264-params": "keyint=infinite:scenecut=0"}
        for i in range(200):
            img = np.full((48, 64, 3), (i * 13) % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    index = scan(path)
    assert index.keyframes_s == [0.0]
    (only,) = plan(index, segment_s=5.0)
    assert (only.start_s, only.first_frame, only.frames) == (0.0, 0, 200)
    assert only.end_s == pytest.approx(20.0)
