"""Probe, decode, encode, annotate and contact sheet on small generated media."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from framequeue.media.annotate import annotate
from framequeue.media.decode import decode_frames
from framequeue.media.encode import VideoEncoder
from framequeue.media.frames import Frame
from framequeue.media.limits import MediaLimits
from framequeue.media.probe import probe, sniff_container
from framequeue.media.sheet import CELL_WIDTH_PX, ContactSheet, sheet_indexes
from framequeue.models.predictions import Detections
from tests.conftest import require_shared
from tests.unit.synthetic import make_clip

NTSC = Fraction(30000, 1001)


def test_probe_and_decode_ntsc(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "ntsc.mp4", frames=31, size_wh=(176, 144), rate=NTSC)
    info = probe(path, MediaLimits())
    assert (info.width, info.height, info.rate, info.frames_declared) == (176, 144, NTSC, 31)
    assert (info.codec, info.container_format) == ("h264", "mp4")
    assert info.duration_s == pytest.approx(31 * 1001 / 30000, abs=0.01)
    frames = list(decode_frames(path, info, threads=2))
    assert [f.index for f in frames] == list(range(31))
    assert frames[0].pts == 0
    assert frames[30].time == 30 / NTSC
    assert frames[5].image.shape == (144, 176, 3) and frames[5].image.dtype == np.uint8
    # BGR: the clip's moving box is (B, G, R) = (40, 40, 230)
    assert frames[0].image[144 // 3 + 5, 5].tolist() == pytest.approx([40, 40, 230], abs=12)


@pytest.mark.parametrize(
    ("container", "suffix", "sniffed"),
    [
        ("matroska", "mkv", "matroska"),
        ("avi", "avi", "avi"),
        ("mpegts", "ts", "mpegts"),
        ("gif", "gif", "gif"),
    ],
)
def test_allow_listed_containers(tmp_path: Path, container: str, suffix: str, sniffed: str) -> None:
    # named .mp4 on purpose: the bytes decide, never the name
    path = make_clip(
        tmp_path / f"clip.{suffix}.mp4", frames=12, size_wh=(64, 48), rate=Fraction(10), container=container
    )
    assert sniff_container(path) == sniffed
    info = probe(path, MediaLimits())
    assert (info.container_format, info.width, info.height, info.rate) == (sniffed, 64, 48, Fraction(10))
    frames = list(decode_frames(path, info, threads=1))
    assert len(frames) == 12 and frames[0].pts == 0
    assert frames[-1].time_s == pytest.approx(1.1, abs=0.02)


def test_gif_decodes_every_declared_frame() -> None:
    gif = require_shared("media", "head-pose-face-detection-male.gif")
    info = probe(gif, MediaLimits())
    assert info.container_format == "gif"
    assert sum(1 for _ in decode_frames(gif, info, threads=1)) == info.frames_declared


def test_encoder_keeps_variable_frame_timing(tmp_path: Path) -> None:
    path = tmp_path / "vfr.mp4"
    pts = [0, 1, 2, 5, 6, 10, 11, 12, 20, 21]
    time_base = Fraction(1, 25)
    with VideoEncoder(path, (64, 48), Fraction(25), time_base, preset="ultrafast") as enc:
        for i, p in enumerate(pts):
            enc.write(np.full((48, 64, 3), i * 20, np.uint8), p)
    assert enc.frames_written == len(pts)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        assert tb is not None
        got = [int(f.pts or 0) * tb for f in container.decode(stream)]
    assert got == [p * time_base for p in pts]


def test_encoder_with_odd_size_and_repeated_pts(tmp_path: Path) -> None:
    path = tmp_path / "odd.mp4"
    with VideoEncoder(path, (65, 49), Fraction(10), Fraction(1, 10), preset="ultrafast") as enc:
        for p in (0, 1, 1, 2):
            enc.write(np.zeros((49, 65, 3), np.uint8), p)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (64, 48)
        assert len(list(container.decode(stream))) == 4


def test_encoder_puts_the_index_first(tmp_path: Path) -> None:
    """+faststart: the `moov` box precedes `mdat`, so a browser can seek before it has the whole file."""
    path = tmp_path / "fast.mp4"
    with VideoEncoder(path, (64, 48), Fraction(25), Fraction(1, 12800), preset="ultrafast") as enc:
        for k in range(30):
            enc.write(np.full((48, 64, 3), k * 8, np.uint8), k * 512)
    data = path.read_bytes()
    assert data[4:8] == b"ftyp"
    assert 0 < data.find(b"moov") < data.find(b"mdat")


def test_annotate_draws_and_is_cheap_at_720p() -> None:
    scene = np.zeros((720, 1280, 3), np.uint8)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1000, (20, 2)).astype(np.float32)
    dets = Detections(
        np.hstack([xy, xy + 150]), rng.integers(0, 3, 20), rng.uniform(0.3, 1, 20).astype(np.float32)
    )
    out = annotate(scene, dets, ["person", "bicycle", "car"])
    assert out is scene and scene.any()
    x1, y1 = round(float(dets.xyxy[0, 0])), round(float(dets.xyxy[0, 1]))
    assert scene[y1 + 20, x1].any()  # the box's left edge
    assert annotate(np.zeros((10, 10, 3), np.uint8), Detections.empty(), []).max() == 0
    runs = 50
    started = time.perf_counter()
    for _ in range(runs):
        annotate(scene, dets, ["person", "bicycle", "car"])
    # ~1 ms a frame is the budget (PERFORMANCE.md); 5 ms leaves room for a busy test machine
    assert (time.perf_counter() - started) / runs < 0.005


def test_contact_sheet_spreads_frames_evenly(tmp_path: Path) -> None:
    assert sheet_indexes(221) == [27, 82, 138, 193]
    assert sheet_indexes(2) == [0, 1]
    sheet = ContactSheet(frames_total=100)
    for i in range(100):
        sheet.offer(
            Frame(i, i, Fraction(1, 25), np.full((90, 160, 3), i, np.uint8)),
            np.full((90, 160, 3), i, np.uint8),
        )
    assert sheet.picks() == [12, 37, 62, 87]
    sheet.save(tmp_path / "sheet.png")
    png = cv2.imread(str(tmp_path / "sheet.png"))
    assert png is not None and png.shape == (2 * 270, 2 * CELL_WIDTH_PX, 3)
    # the bottom-right cell shows frame 87 (pixel value 87 away from the label)
    assert png[-5, -5].tolist() == [87, 87, 87]


def test_contact_sheet_without_a_frame_count_keeps_little(tmp_path: Path) -> None:
    sheet = ContactSheet(frames_total=None)
    image = np.zeros((90, 160, 3), np.uint8)
    for i in range(1000):
        sheet.offer(Frame(i, i, Fraction(1, 25), image), image)
        assert len(sheet._kept) < 2 * sheet.cells
    picks = sheet.picks()
    assert len(picks) == 4 and picks[-1] - picks[0] >= 500
