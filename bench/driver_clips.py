"""The driver benchmark's clips: the three head-pose GIFs as they are, and a 60 s 1280x720 30 fps H.264 clip
made from them.

The long clip is upscaled 480x270 footage: every GIF frame resized to 1280x720 (bench.clips' resize), each
GIF played forwards then backwards (a ping-pong, so motion never jumps inside a clip; the three clips follow
one another with a cut, as the GIFs do), the whole looped and resampled by time from 12.5 to 30 fps (each
source frame shown 2 or 3 times), encoded as bench.clips encodes (veryfast, CRF 20, GOP 60). 40 % of its
frames hold two faces (the female-and-male GIF), the rest one. Upscaled frames are softer than a native
720p camera: decode and encode are, if anything, a little cheaper than on real 720p footage, while YuNet
(letterboxed to 640x640) and FaceMesh (a 192x192 crop) cost the same at any frame size.
Cached in bench/results/clips/ (ignored by git) and made once.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction
from pathlib import Path
from typing import Final

import av

from bench.clips import FPS, HEIGHT, SOURCE_CRF, SOURCE_GOP, SOURCE_PRESET, WIDTH, _source_frames, pingpong_index
from bench.common import CLIPS, SHARED

#: short name -> GIF (480x270, 12.5 fps; 23, 62 and 56 frames; the last has two faces)
GIFS: Final = {
    key: SHARED / "media" / f"head-pose-face-detection-{name}.gif"
    for key, name in (("female", "female"), ("male", "male"), ("pair", "female-and-male"))
}
#: the GIFs' frame rate (their frames last 8 or 9 centiseconds)
SOURCE_FPS: Final = Fraction(25, 2)
#: bump when the recipe changes, so the cached clip is made again
RECIPE: Final = "v1"


def clip_path(seconds: int) -> Path:
    return CLIPS / f"headpose-pingpong_{WIDTH}x{HEIGHT}_{FPS}fps_{seconds}s_{RECIPE}.mp4"


def source_order(lengths: list[int]) -> list[tuple[int, int]]:
    """(clip, frame) of one loop: each clip forwards then backwards (its ends shown once), clip after clip."""
    return [(c, pingpong_index(k, n)) for c, n in enumerate(lengths) for k in range(2 * (n - 1))]


def make_clip(seconds: int = 60, force: bool = False) -> Path:
    """The cached clip of `seconds`, made if missing; returns its path."""
    path = clip_path(seconds)
    if path.is_file() and not force:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = [_source_frames(gif) for gif in GIFS.values()]
    order = source_order([len(f) for f in frames])
    part = path.with_suffix(".part.mp4")
    with av.open(str(part), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(FPS, 1),
                                options={"preset": SOURCE_PRESET, "crf": str(SOURCE_CRF)})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = SOURCE_GOP
        stream.codec_context.time_base = Fraction(1, FPS)
        for n in range(seconds * FPS):
            # resampled by time: the source frame showing at n / FPS
            clip, k = order[int(n * SOURCE_FPS / FPS) % len(order)]
            frame = frames[clip][k]
            frame.pts, frame.time_base = n, Fraction(1, FPS)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    part.replace(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seconds", type=int, nargs="?", default=60)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    t0 = time.monotonic()
    path = make_clip(args.seconds, args.force)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
