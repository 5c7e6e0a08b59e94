"""Synthetic test clips made from the real dashcam clip: its frames resized to 1280x720 and played
forwards then backwards (a ping-pong loop, so motion never jumps), re-encoded as H.264 at 30 fps.

Real frames keep detections and encode complexity realistic (a synthetic gradient would make the encoder
and the detector look cheaper than they are). Upscaled 540p frames are a little softer than a native 720p
camera, so decode and encode are, if anything, slightly cheaper here than on real 720p footage.
Clips are cached in bench/results/clips/ (ignored by git) and made once.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction
from pathlib import Path
from typing import Final, cast

import av
import cv2
import numpy as np
import numpy.typing as npt

from bench.common import CLIPS, DASHCAM

WIDTH: Final = 1280
HEIGHT: Final = 720
FPS: Final = 30
#: source encode: what a camera or an upload tool would plausibly produce
SOURCE_PRESET: Final = "veryfast"
SOURCE_CRF: Final = 20
SOURCE_GOP: Final = 60
#: bump when the recipe changes, so cached clips are made again
RECIPE: Final = "v1"
#: longer clips repeat this one
BASE_SECONDS: Final = 60


def clip_path(seconds: int) -> Path:
    return CLIPS / f"dashcam-pingpong_{WIDTH}x{HEIGHT}_{FPS}fps_{seconds}s_{RECIPE}.mp4"


def pingpong_index(n: int, count: int) -> int:
    """Frame n of an endless forwards-backwards loop over `count` frames (ends not repeated)."""
    period = 2 * (count - 1)
    k = n % period
    return k if k < count else period - k


def _source_frames(src: Path) -> list[av.VideoFrame]:
    frames: list[av.VideoFrame] = []
    with av.open(str(src)) as container:
        for frame in container.decode(video=0):
            bgr = cast(npt.NDArray[np.uint8], frame.to_ndarray(format="bgr24"))
            big = np.asarray(cv2.resize(bgr, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR), np.uint8)
            frames.append(av.VideoFrame.from_ndarray(big, format="bgr24").reformat(format="yuv420p"))
    return frames


def make_clip(seconds: int, src: Path = DASHCAM, force: bool = False) -> Path:
    """The cached clip of `seconds`, made if missing; returns its path.

    A multiple of BASE_SECONDS is the base clip's packets repeated (closed GOPs, so a plain remux with
    shifted timestamps is a valid stream): a 240 s clip costs seconds to make instead of minutes.
    """
    path = clip_path(seconds)
    if path.is_file() and not force:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part.mp4")
    if seconds > BASE_SECONDS and seconds % BASE_SECONDS == 0:
        _repeat(make_clip(BASE_SECONDS, src, force), part, seconds // BASE_SECONDS)
    else:
        _encode(src, part, seconds)
    part.replace(path)
    return path


def _repeat(base: Path, dest: Path, times: int) -> None:
    with av.open(str(base)) as inp, av.open(str(dest), "w", format="mp4") as out:
        src = inp.streams.video[0]
        stream = out.add_stream_from_template(src)
        assert src.time_base is not None
        ticks = round(BASE_SECONDS / src.time_base)
        for k in range(times):
            inp.seek(0)
            for packet in inp.demux(src):
                if packet.dts is None or packet.pts is None:  # the demuxer's flush packet
                    continue
                packet.pts += k * ticks
                packet.dts += k * ticks
                packet.stream = stream
                out.mux(packet)


def _encode(src: Path, part: Path, seconds: int) -> None:
    frames = _source_frames(src)
    with av.open(str(part), "w", format="mp4") as out:
        options = {"preset": SOURCE_PRESET, "crf": str(SOURCE_CRF)}
        stream = out.add_stream("libx264", rate=Fraction(FPS, 1), options=options)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = SOURCE_GOP
        stream.codec_context.time_base = Fraction(1, FPS)
        for n in range(seconds * FPS):
            frame = frames[pingpong_index(n, len(frames))]
            frame.pts = n
            frame.time_base = Fraction(1, FPS)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("seconds", type=int, nargs="+")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    for seconds in args.seconds:
        t0 = time.monotonic()
        path = make_clip(seconds, force=args.force)
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
