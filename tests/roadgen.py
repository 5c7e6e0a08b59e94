"""A synthetic approach on a real road: a real car's rear, cut from a dashcam frame, pasted into the ego lane
of another real frame at the size and height a pinhole camera would see it at a known distance.

The construction fixes the truth the road pipeline must find: at distance Z the car is f·W/Z pixels wide and
touches the road f·h/Z pixels below the horizon, so the pipeline's distance, time gap (Z / ego speed) and
TTC (Z / closing speed) are known frame by frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

#: the grey car's rear at frame 160 of solidWhiteRight.mp4: the detector's box, pixels
CAR_FRAME = 160
CAR_BOX_XYXY = (99, 297, 224, 364)
#: a frame of the same clip used as the road, with the ego lane ahead clear of near traffic
ROAD_FRAME = 10
#: the road frame's horizon as it looks: the row where the road's far end meets the hills and the dashed lines
#: vanish, read off the frame, pixels (straight lines through the lanes' near parts meet higher, at ~261: the
#: road is not a plane, so the pasted car is grounded by eye, and the test checks no ground-plane distance)
HORIZON_Y_PX = 303.0


@dataclass(frozen=True)
class Scene:
    focal_px: float
    camera_height_m: float
    car_width_m: float
    fps: int


def read_frames(video: Path, indexes: set[int]) -> dict[int, npt.NDArray[np.uint8]]:
    found: dict[int, npt.NDArray[np.uint8]] = {}
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in indexes:
                found[i] = frame.to_ndarray(format="bgr24")
            if len(found) == len(indexes):
                break
    return found


def paste(
    road: npt.NDArray[np.uint8], car: npt.NDArray[np.uint8], scene: Scene, distance_m: float
) -> tuple[npt.NDArray[np.uint8], tuple[float, float, float, float]]:
    """The road with the car at `distance_m` straight ahead; the pasted box (x1, y1, x2, y2)."""
    height, width = road.shape[:2]
    w = scene.focal_px * scene.car_width_m / distance_m
    h = w * car.shape[0] / car.shape[1]
    bottom = HORIZON_Y_PX + scene.focal_px * scene.camera_height_m / distance_m
    cx = width / 2
    x1, y1 = round(cx - w / 2), round(bottom - h)
    x2, y2 = x1 + max(1, round(w)), round(bottom)
    out = road.copy()
    shrink = w < car.shape[1]
    sized = cv2.resize(car, (x2 - x1, y2 - y1), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    cx1, cy1, cx2, cy2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
    out[cy1:cy2, cx1:cx2] = sized[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1]
    return out, (float(x1), float(y1), float(x2), float(y2))


def write_approach(
    path: Path, video: Path, scene: Scene, distance_at: Callable[[float], float], duration_s: float
) -> list[tuple[float, float]]:
    """An H.264 clip of the approach; (t_s, true distance) per frame."""
    frames = read_frames(video, {ROAD_FRAME, CAR_FRAME})
    road = frames[ROAD_FRAME]
    x1, y1, x2, y2 = CAR_BOX_XYXY
    car = frames[CAR_FRAME][y1:y2, x1:x2].copy()
    truth = []
    height, width = road.shape[:2]
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(scene.fps), options={"crf": "16", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        n = round(duration_s * scene.fps)
        for k in range(n):
            t_s = k / scene.fps
            z = distance_at(t_s)
            image, _ = paste(road, car, scene, z)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            for packet in stream.encode(frame):
                out.mux(packet)
            truth.append((t_s, z))
        for packet in stream.encode(None):
            out.mux(packet)
    return truth


#: the approach the acceptance test drives, as (start_s, distance at start m, closing speed m/s) pieces:
#: closing at 4 m/s from 50 m to 26 m, holding 26 m, closing at 7 m/s to 12 m, holding 12 m
APPROACH_PIECES = ((0.0, 50.0, 4.0), (6.0, 26.0, 0.0), (9.0, 26.0, 7.0), (11.0, 12.0, 0.0))
APPROACH_S = 12.0


def approach_distance_m(t_s: float) -> float:
    start, z0, closing = max((p for p in APPROACH_PIECES if p[0] <= t_s), key=lambda p: p[0])
    return z0 - closing * (t_s - start)


def approach_closing_mps(t_s: float) -> float:
    return max((p for p in APPROACH_PIECES if p[0] <= t_s), key=lambda p: p[0])[2]
