"""Packet remux: keyframe cuts of real synthetic video decode to the very frames of the whole, and segments
encoded with the project's encoder (stitchable) join into one seamless faststart MP4."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np
import numpy.typing as npt
import pytest

from framequeue.errors import MediaError, UnsupportedMedia
from framequeue.media.encode import VideoEncoder
from framequeue.media.keyframes import plan, scan
from framequeue.media.remux import concat, cut
from tests.mediagen import make_video, random_bytes, truncated


def decode(path: Path) -> tuple[list[npt.NDArray[np.uint8]], list[float]]:
    """Every frame (BGR) and its time in seconds, in presentation order."""
    images, times = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            images.append(cast(npt.NDArray[np.uint8], frame.to_ndarray(format="bgr24")))
            times.append(float(frame.time))
    return images, times


def with_audio(src: Path, dst: Path) -> Path:
    """`src`'s video packets plus one AAC stream."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        aout = out.add_stream("aac", rate=16000)
        for packet in inp.demux(vin):
            if packet.size:
                packet.stream = vout
                out.mux(packet)
        for k in range(20):
            samples = np.zeros((1, 1024), np.float32)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, k * 1024
            for packet in aout.encode(frame):
                out.mux(packet)
        for packet in aout.encode():
            out.mux(packet)
    return dst


def test_cut_pieces_decode_to_the_wholes_frames(tmp_path: Path) -> None:
    src = make_video(tmp_path / "src.mp4", frames=100, fps=25)  # keyframes every second
    whole, _ = decode(src)
    pieces = [(0.0, 1.0), (1.0, 3.0), (3.0, None)]
    offset = 0
    for k, (start_s, end_s) in enumerate(pieces):
        result = cut(src, tmp_path / f"p{k}.mp4", start_s, end_s)
        images, times = decode(tmp_path / f"p{k}.mp4")
        assert result.frames == len(images)
        assert result.start_s == start_s
        # timestamps rebased: the piece starts at 0 and steps one frame period
        assert times[0] == pytest.approx(0.0)
        np.testing.assert_allclose(np.diff(times), 1 / 25, atol=1e-6)
        for j, image in enumerate(images):
            np.testing.assert_array_equal(image, whole[offset + j])
        offset += len(images)
    assert offset == 100
    assert result.end_s == pytest.approx(4.0)


def test_cut_follows_a_plan_with_b_frames(tmp_path: Path) -> None:
    src = tmp_path / "b.mp4"
    with VideoEncoder(src, (64, 48), Fraction(30), Fraction(1, 30), preset="medium") as enc:
        for i in range(90):
            img = np.zeros((48, 64, 3), np.uint8)
            img[10:30, (i * 3) % 40 : (i * 3) % 40 + 20] = 200
            enc.write(img, i)
    index = scan(src)
    whole, _ = decode(src)
    plans = plan(index, segment_s=1.0, lead_in_s=0.0, min_segment_s=0.5)
    assert len(plans) >= 2
    got = 0
    for p in plans:
        # the last plan's end_s is the video's duration: cut reads to the end
        result = cut(src, tmp_path / f"s{p.index}.mp4", p.start_s, p.end_s)
        assert result.frames == p.frames
        images, _ = decode(tmp_path / f"s{p.index}.mp4")
        for j, image in enumerate(images):
            np.testing.assert_array_equal(image, whole[p.first_frame + j])
        got += len(images)
    assert got == index.frames == 90
    assert result.end_s == pytest.approx(index.duration_s)


def remux_to(src: Path, dst: Path, container_format: str) -> Path:
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=container_format) as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for packet in inp.demux(vin):
            if packet.size:
                packet.stream = vout
                out.mux(packet)
    return dst


@pytest.mark.parametrize(("container_format", "suffix"), [("mp4", "mp4"), ("matroska", "mkv"), ("mpegts", "ts")])
def test_cut_every_allowed_container_seeks_to_the_same_frames(
    tmp_path: Path, container_format: str, suffix: str
) -> None:
    # B-frames, a keyframe every 10 frames; the demuxer seeks (or reads from the start where it cannot)
    encoded = tmp_path / "enc.mp4"
    with VideoEncoder(encoded, (64, 48), Fraction(25), Fraction(1, 25), preset="medium") as enc:
        for i in range(100):
            img = np.zeros((48, 64, 3), np.uint8)
            img[10:30, (i * 3) % 40 : (i * 3) % 40 + 20] = (i * 2) % 256
            enc.write(img, i)
    src = remux_to(encoded, tmp_path / f"src.{suffix}", container_format)
    index = scan(src)
    whole, _ = decode(src)
    assert index.frames == len(whole) == 100
    plans = plan(index, segment_s=1.2, lead_in_s=0.5, min_segment_s=0.6)
    assert len(plans) >= 3
    for p in plans:
        piece = tmp_path / f"s{p.index}.mp4"
        result = cut(src, piece, p.lead_in_start_s, p.end_s)
        images, _ = decode(piece)
        assert result.frames == len(images) == p.lead_in_frames + p.frames
        first = p.first_frame - p.lead_in_frames
        for j, image in enumerate(images):
            np.testing.assert_array_equal(image, whole[first + j])


def test_cut_drops_audio(tmp_path: Path) -> None:
    src = with_audio(make_video(tmp_path / "v.mp4", frames=50), tmp_path / "av.mp4")
    cut(src, tmp_path / "out.mp4", 1.0, None)
    with av.open(str(tmp_path / "out.mp4")) as out:
        assert [s.type for s in out.streams] == ["video"]
        assert out.streams.video[0].frames == 25


def test_cut_refuses_times_that_are_not_keyframes(tmp_path: Path) -> None:
    src = make_video(tmp_path / "v.mp4", frames=100, fps=25)
    with pytest.raises(ValueError, match=r"no keyframe at start_s 0\.5"):
        cut(src, tmp_path / "a.mp4", 0.5, 2.0)
    with pytest.raises(ValueError, match=r"no keyframe at end_s 2\.5"):
        cut(src, tmp_path / "b.mp4", 1.0, 2.5)
    with pytest.raises(ValueError, match="must come after"):
        cut(src, tmp_path / "c.mp4", 2.0, 1.0)
    with pytest.raises(UnsupportedMedia):
        cut(random_bytes(tmp_path / "x.mp4"), tmp_path / "d.mp4", 0.0, None)


def test_cut_refuses_a_codec_mp4_cannot_carry(tmp_path: Path) -> None:
    src = tmp_path / "v.webm"
    with av.open(str(src), "w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=Fraction(10, 1))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"g": "10", "keyint_min": "10", "auto-alt-ref": "0", "lag-in-frames": "0"}
        for i in range(40):
            image = np.full((48, 64, 3), 6 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    plans = plan(scan(src), 2.0, 0.0)
    assert len(plans) == 2  # it has keyframes to cut at: only the container is the trouble
    with pytest.raises(UnsupportedMedia, match="vp8 video cannot be copied into MP4"):
        cut(src, tmp_path / "piece.mp4", plans[1].start_s, None)


def encode_part(path: Path, first: int, frames: int, **kwargs: object) -> Path:
    """`frames` frames of a moving square, numbered from `first` (their pts), through VideoEncoder."""
    size = kwargs.pop("size_wh", (96, 64))
    assert isinstance(size, tuple)
    with VideoEncoder(path, size, Fraction(25), Fraction(1, 25), stitchable=True, **kwargs) as enc:  # type: ignore[arg-type]
        for i in range(first, first + frames):
            img = np.full((size[1], size[0], 3), 30, np.uint8)
            x = (i * 5) % (size[0] - 16)
            img[20:36, x : x + 16] = (0, 0, 250)
            enc.write(img, i)
    return path


def x264_options(path: Path) -> str:
    """The options x264 records in its SEI of the first frame."""
    found = re.search(rb"options: ([^\x00]*)", path.read_bytes())
    assert found is not None
    return found.group(1).decode("ascii", "replace")


def test_stitchable_is_asked_for_and_only_then(tmp_path: Path) -> None:
    stitched = x264_options(encode_part(tmp_path / "s.mp4", 0, 5))
    assert "stitchable=1" in stitched.split() and "open_gop=0" in stitched.split()
    with VideoEncoder(tmp_path / "whole.mp4", (96, 64), Fraction(25), Fraction(1, 25)) as enc:
        for i in range(5):
            enc.write(np.full((64, 96, 3), 30 * i, np.uint8), i)
    whole = x264_options(tmp_path / "whole.mp4")
    assert "stitchable=1" not in whole
    # nothing else differs: an unsplit job's output keeps its settings
    assert whole.split() == [o for o in stitched.split() if o != "stitchable=1"]


def box_order(path: Path) -> tuple[int, int]:
    """Offsets of the top-level `moov` and `mdat` boxes."""
    data = path.read_bytes()
    at, boxes = 0, dict[str, int]()
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        kind = data[at + 4 : at + 8].decode("latin-1")
        boxes.setdefault(kind, at)
        if size == 1:
            size = int.from_bytes(data[at + 8 : at + 16], "big")
        if size < 8:
            break
        at += size
    return boxes["moov"], boxes["mdat"]


def test_concat_of_stitchable_segments_is_seamless(tmp_path: Path) -> None:
    # segments as a split job writes them: each its own encoder, pts continuing the whole's (so the
    # second part's first pts is 40, not 0), lengths that are not multiples of a GOP
    counts = [40, 37, 23]
    parts, first = [], 0
    for k, n in enumerate(counts):
        parts.append(encode_part(tmp_path / f"part{k}.mp4", first, n))
        first += n
    dst = tmp_path / "joined.mp4"
    assert concat(parts, dst) == sum(counts)
    images, times = decode(dst)
    assert len(images) == sum(counts)
    steps = np.diff(times)
    assert np.all(steps > 0)
    np.testing.assert_allclose(steps, 1 / 25, atol=1e-6)
    assert times[0] == pytest.approx(0.0)
    moov, mdat = box_order(dst)
    assert moov < mdat
    # each frame is the part's own decoded frame (nothing dropped or doubled at a join)
    offset = 0
    for part in parts:
        own, _ = decode(part)
        for j, image in enumerate(own):
            np.testing.assert_array_equal(images[offset + j], image)
        offset += len(own)
    with av.open(str(dst)) as container:
        assert container.streams.video[0].frames == sum(counts)


def test_concat_refuses_incompatible_parts(tmp_path: Path) -> None:
    a = encode_part(tmp_path / "a.mp4", 0, 10)
    b = encode_part(tmp_path / "b.mp4", 10, 10, size_wh=(64, 48))
    with pytest.raises(UnsupportedMedia, match=r"b\.mp4 after a\.mp4: size differs"):
        concat([a, b], tmp_path / "out.mp4")
    # another preset: other SPS/PPS (CABAC, reference frames)
    c = encode_part(tmp_path / "c.mp4", 10, 10, preset="ultrafast")
    with pytest.raises(UnsupportedMedia, match="extradata"):
        concat([a, c], tmp_path / "out.mp4")
    with pytest.raises(UnsupportedMedia, match="not a regular local file"):
        concat([a, tmp_path / "missing.mp4"], tmp_path / "out.mp4")
    # a truncated part: its stream's facts are lost (no pixel format) or its packets run out
    with pytest.raises(MediaError):
        concat([a, truncated(encode_part(tmp_path / "d.mp4", 10, 10), tmp_path / "t.mp4", 0.7)], tmp_path / "o.mp4")
