"""Hostile and broken uploads: each is refused with the most specific media error, before heavy work."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import threading
import time
from pathlib import Path
from typing import Any

import av.error
import numpy as np
import pytest

from framequeue.errors import CorruptMedia, MediaError, MediaLimitsExceeded, UnsupportedMedia
from framequeue.media.decode import decode_frames
from framequeue.media.limits import MediaLimits
from framequeue.media.probe import ALLOWED_FORMATS, open_container, probe, sniff_container
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.base import RunContext
from framequeue.pipelines.detect import DetectPipeline
from framequeue.worker.child import MediaChild
from framequeue.worker.messages import ChildSpec
from tests.hostilegen import ffconcat_list, hls_playlist, matroska
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


# -- playlists and lists never make ffmpeg open another file ---------------------------------------------


def _probe_within(path: Path, timeout_s: float = 20.0) -> BaseException | None:
    """probe() in a thread: a FIFO opened for reading would block it, which the timeout turns into a failure."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            probe(path, DEFAULT)
        except BaseException as exc:  # handed to the test
            raised.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), f"probing {path.name} blocked: something opened the FIFO it names"
    return raised[0] if raised else None


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "sentinel.fifo"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("write", [hls_playlist, ffconcat_list], ids=["hls", "ffconcat"])
@pytest.mark.parametrize("target", ["fifo", "missing"])
def test_a_playlist_disguised_as_mp4_is_refused_before_it_names_anything(
    tmp_path: Path, fifo: Path, write: Any, target: str
) -> None:
    named = fifo if target == "fifo" else tmp_path / "does-not-exist.ts"
    error = _probe_within(write(tmp_path / "video.mp4", named))
    # the refusal, not a missing-file error: nothing the list names was looked at
    assert isinstance(error, UnsupportedMedia), error
    assert "never opened" in str(error) and named.name not in str(error)


def test_a_playlist_that_sniffs_as_mp4_is_read_by_the_mp4_demuxer_only(tmp_path: Path, fifo: Path) -> None:
    path = tmp_path / "video.mp4"
    path.write_bytes(b"\x00\x00\x00\x10ftypisom" + f"\n#EXTM3U\n#EXTINF:10.0,\n{fifo}\n".encode())
    error = _probe_within(path)
    assert isinstance(error, CorruptMedia), error  # ffmpeg never guessed "hls"; the FIFO stayed closed


@pytest.mark.parametrize("demuxer", ["hls", "concat", "image2", "lavfi"])
def test_only_allow_listed_demuxers_are_opened(tmp_path: Path, demuxer: str) -> None:
    path = make_clip(tmp_path / "clip.mp4", frames=5)
    assert demuxer not in ALLOWED_FORMATS
    with pytest.raises(UnsupportedMedia, match="is not accepted"):
        open_container(path, demuxer)


# -- crafted headers: caps checked before ffmpeg decodes anything ----------------------------------------


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"width": 100_000, "height": 100_000}, r"100000x100000 \(declared\) exceeds"),
        ({"width": 16_000, "height": 16_000}, r"16000x16000 \(declared\) exceeds"),
        ({"duration_s": 24 * 3600.0}, "duration 86400 s exceeds"),
        ({"duration_s": 2000.0, "frame_ms": 1}, "2000000 frames exceed"),
    ],
    ids=["100000x100000", "16000x16000", "24h-duration", "2M-tiny-frames"],
)
def test_crafted_headers_exceed_the_limits(tmp_path: Path, header: dict[str, Any], message: str) -> None:
    path = matroska(tmp_path / "video.mp4", **header)
    with pytest.raises(MediaLimitsExceeded, match=message):
        probe(path, DEFAULT)


def test_a_crafted_header_within_the_limits_probes(tmp_path: Path) -> None:
    info = probe(matroska(tmp_path / "ok.mkv", width=64, height=48), DEFAULT)
    assert (info.resolution_wh, info.container_format, info.rate) == ((64, 48), "matroska", 25)


def test_a_declared_frame_size_is_refused_before_ffmpeg_opens_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*_: object) -> None:
        raise AssertionError("ffmpeg was handed the file")

    monkeypatch.setattr("framequeue.media.probe.open_container", never)
    with pytest.raises(MediaLimitsExceeded):
        probe(matroska(tmp_path / "big.mkv", width=100_000, height=100_000), DEFAULT)


def test_ffmpeg_running_out_of_memory_is_not_corrupt_media(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_clip(tmp_path / "clip.mp4", frames=5)
    info = probe(path, DEFAULT)

    def no_memory(*_: object, **__: object) -> None:
        raise av.error.MemoryError(12, "Cannot allocate memory")

    monkeypatch.setattr("av.VideoFrame.to_ndarray", no_memory)
    with pytest.raises(MemoryError):
        list(decode_frames(path, info, threads=1))


# -- the media child's own limits ------------------------------------------------------------------------


def _child_reply(child: MediaChild, timeout_s: float = 30.0) -> tuple[Any, ...]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        msg = child.poll(0.2)
        if msg is not None and msg[0] != "progress":
            return msg
        if msg is None and not child.is_alive():
            return ("dead", child.exitcode)
    raise AssertionError("the media child gave no answer")


def _noop_spec(tmp_path: Path, cpu_budget_s: float = 0.0, **params: Any) -> ChildSpec:
    payload = tmp_path / "in.bin"
    payload.write_bytes(b"x")
    return ChildSpec(pipeline="noop", params=params, input_path=payload, output_dir=tmp_path / "out",
                     model_repo=tmp_path / "models", threads=1, limits=DEFAULT, cpu_budget_s=cpu_budget_s)


def test_the_memory_cap_ends_a_job_resource_exhausted(tmp_path: Path) -> None:
    child = MediaChild(mp.get_context("forkserver"), "media-test", max_jobs=10, memory_mb=1024)
    try:
        child.run(_noop_spec(tmp_path))
        assert _child_reply(child)[0] == "done"  # the cap leaves room for ordinary work
        child.run(_noop_spec(tmp_path, alloc_mb=2048))
        reply = _child_reply(child)
        assert reply[:2] == ("error", "resource_exhausted") and reply[3] is False, reply
        assert not child.reusable_after(reply)
    finally:
        child.stop()


def test_the_cpu_budget_ends_a_job_resource_exhausted_in_a_warm_child(tmp_path: Path) -> None:
    child = MediaChild(mp.get_context("forkserver"), "media-test", max_jobs=10)
    try:
        child.run(_noop_spec(tmp_path, cpu_budget_s=2.0, burn_s=1.0))  # within its budget
        assert _child_reply(child)[0] == "done"
        # the next job's limit counts from what the child used so far, not from its start
        child.run(_noop_spec(tmp_path, cpu_budget_s=2.0, burn_s=60.0))
        started = time.monotonic()
        reply = _child_reply(child)
        assert reply[:2] == ("error", "resource_exhausted") and "CPU time" in reply[2], reply
        assert reply[3] is False and time.monotonic() - started < 20
        assert not child.reusable_after(reply)
    finally:
        child.stop()
