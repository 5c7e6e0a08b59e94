"""Hostile and broken uploads: each is refused with the most specific media error, before heavy work."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest

from framequeue.errors import CorruptMedia, MediaError, MediaLimitsExceeded, UnsupportedMedia
from framequeue.media.decode import decode_frames
from framequeue.media.probe import probe, sniff_container
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.base import MediaLimits, RunContext
from framequeue.pipelines.detect import DetectPipeline
from tests.unit.synthetic import make_audio_only, make_clip

DEFAULT = MediaLimits()


def decode_all(path: Path, limits: MediaLimits = DEFAULT) -> int:
    info = probe(path, limits)
    return sum(1 for _ in decode_frames(path, info, threads=1))


def test_random_bytes_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "video.mp4"
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes())
    with pytest.raises(UnsupportedMedia, match=r"not a video: video\.mp4 is unrecognised data"):
        probe(path, DEFAULT)


def test_pdf_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "report.mp4"
    path.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + b"0" * 2000 + b"\n%%EOF\n")
    with pytest.raises(UnsupportedMedia, match="PDF document"):
        probe(path, DEFAULT)


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"#EXTM3U\n#EXT-X-VERSION:3\nhttp://example.invalid/a.ts\n", "HLS playlist"),
        (b"ffconcat version 1.0\nfile /etc/passwd\n", "ffconcat"),
        (b"", "empty file"),
        (b"just some words in a text file\n", "text"),
    ],
)
def test_playlists_lists_and_text_are_never_opened(tmp_path: Path, content: bytes, what: str) -> None:
    path = tmp_path / "x.mp4"
    path.write_bytes(content)
    with pytest.raises(UnsupportedMedia, match=what):
        probe(path, DEFAULT)


def test_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMedia, match="not a regular local file"):
        probe(tmp_path, DEFAULT)


def test_container_without_video(tmp_path: Path) -> None:
    path = make_audio_only(tmp_path / "sound.mp4")
    assert sniff_container(path) == "mp4"
    with pytest.raises(UnsupportedMedia, match="no video stream \\(streams: audio\\)"):
        probe(path, DEFAULT)


def test_truncated_mp4_with_index_at_the_end(tmp_path: Path) -> None:
    whole = make_clip(tmp_path / "whole.mp4", frames=60)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(CorruptMedia, match="cannot be opened"):
        probe(cut, DEFAULT)


def test_truncated_mp4_with_index_first_decodes_short(tmp_path: Path) -> None:
    whole = make_clip(tmp_path / "whole.mp4", frames=60, faststart=True)
    assert decode_all(whole) == 60
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert probe(cut, DEFAULT).frames_declared == 60
    with pytest.raises(CorruptMedia, match="decod"):
        decode_all(cut)


def test_fewer_frames_than_declared_is_corrupt(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "clip.mp4", frames=30)
    info = probe(path, DEFAULT)
    assert sum(1 for _ in decode_frames(path, dataclasses.replace(info, frames_declared=31), 1)) == 30
    with pytest.raises(CorruptMedia, match="only 30 of the 40 declared frames decode"):
        list(decode_frames(path, dataclasses.replace(info, frames_declared=40), 1))


def test_truncated_real_clip_fails_the_pipeline(tmp_path: Path, dashcam_video: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(dashcam_video.read_bytes()[: dashcam_video.stat().st_size // 2])
    pytest.importorskip("onnx", reason="the tiny test model is built with the onnx package")
    from tests.unit.synthetic import write_tiny_yolox

    repo = ModelRepository(tmp_path / "models")
    model, classes = write_tiny_yolox(tmp_path / "src")
    repo.add("tiny", model, "yolox", classes)
    pipeline = DetectPipeline()
    ctx = RunContext(
        cut,
        tmp_path / "out",
        pipeline.validate({"model": "tiny"}, repo),
        repo,
        2,
        lambda p: None,
        threading.Event(),
    )
    with pytest.raises(CorruptMedia):
        pipeline.run(ctx)
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (MediaLimits(max_pixels=160 * 120 - 1), "pixels a frame"),
        (MediaLimits(max_duration_s=1.0), "duration"),
        (MediaLimits(max_frames=20), "frames exceed"),
        (MediaLimits(max_streams=0), "streams exceed"),
    ],
)
def test_limits_are_checked_before_decoding(tmp_path: Path, limits: MediaLimits, message: str) -> None:
    path = make_clip(tmp_path / "clip.mp4", frames=30, size_wh=(160, 120))
    assert probe(path, DEFAULT).resolution_wh == (160, 120)
    with pytest.raises(MediaLimitsExceeded, match=message):
        probe(path, limits)


def test_media_errors_are_value_errors() -> None:
    assert issubclass(MediaError, ValueError)
