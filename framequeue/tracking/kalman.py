"""Constant-velocity Kalman filter of boxes in (cx, cy, a = w/h, h), batched over tracks, time-aware.

State of one track, a row of `mean` (N x 8) with its covariance in `cov` (N x 8 x 8):
(cx, cy, a, h, vcx, vcy, va, vh); cx, cy, h in pixels, a unitless, velocities per second.

The noise model is ByteTrack's (DeepSORT's): standard deviations proportional to the box height, written per
frame of a 30 fps video. Here velocities are per second and the process noise is a random walk whose variance
grows linearly with the elapsed time, scaled so that one `predict` of REFERENCE_PERIOD_S is exactly the
per-frame model; a 0.2 s gap at 5 fps adds six frames' worth of noise, a repeated time (dt = 0) adds none.

Pure functions of arrays: nothing is modified in place, nothing reads a clock.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "REFERENCE_PERIOD_S",
    "initiate",
    "predict",
    "update",
    "xyah_to_xyxy",
    "xyxy_to_xyah",
]

FloatArray = npt.NDArray[np.float64]

#: the frame period (s) of the per-frame noise model: predict(dt_s=REFERENCE_PERIOD_S) is ByteTrack's step
REFERENCE_PERIOD_S: Final = 1.0 / 30.0
#: std of cx, cy and h, per reference frame and in the measurement, as a fraction of the box height
POSITION_STD_WEIGHT: Final = 1.0 / 20.0
#: std of the cx, cy and h velocities per reference frame (px per frame), as a fraction of the box height
VELOCITY_STD_WEIGHT: Final = 1.0 / 160.0
#: process std of the aspect ratio (unitless) per reference frame
ASPECT_STD: Final = 1e-2
#: process std of the aspect ratio's velocity, per reference frame (aspect per frame)
ASPECT_VELOCITY_STD: Final = 1e-5
#: measurement std of the aspect ratio (unitless): detectors are loose about width
ASPECT_MEASUREMENT_STD: Final = 1e-1
#: a new track's stds of cx, cy, h and of their velocities, as multiples of the process stds (the velocity
#: is unknown)
INITIAL_POSITION_FACTOR: Final = 2.0
INITIAL_VELOCITY_FACTOR: Final = 10.0

_NDIM: Final = 4
_EYE: Final = np.eye(2 * _NDIM)


def xyxy_to_xyah(xyxy: npt.ArrayLike) -> FloatArray:
    """N x 4 (x1, y1, x2, y2) -> N x 4 (cx, cy, w/h, h)."""
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return np.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, w / h, h], axis=1)


def xyah_to_xyxy(xyah: npt.ArrayLike) -> FloatArray:
    """N x 4 (cx, cy, w/h, h) -> N x 4 (x1, y1, x2, y2)."""
    m = np.asarray(xyah, dtype=np.float64).reshape(-1, 4)
    half_w, half_h = m[:, 2] * m[:, 3] / 2, m[:, 3] / 2
    return np.stack([m[:, 0] - half_w, m[:, 1] - half_h, m[:, 0] + half_w, m[:, 1] + half_h], axis=1)


def _process_std(h: FloatArray) -> FloatArray:
    """N x 8 process stds per reference frame, velocities converted to per second."""
    pos = POSITION_STD_WEIGHT * h
    vel = VELOCITY_STD_WEIGHT * h / REFERENCE_PERIOD_S
    aspect = np.full_like(h, ASPECT_STD)
    aspect_vel = np.full_like(h, ASPECT_VELOCITY_STD / REFERENCE_PERIOD_S)
    return np.stack([pos, pos, aspect, pos, vel, vel, aspect_vel, vel], axis=1)


def initiate(xyah: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """New tracks from N measurements (cx, cy, a, h): (mean N x 8 with zero velocity, cov N x 8 x 8)."""
    z = np.asarray(xyah, dtype=np.float64).reshape(-1, _NDIM)
    mean = np.concatenate([z, np.zeros_like(z)], axis=1)
    std = _process_std(z[:, 3])
    # the per-frame model widens only the box stds; the aspect's stay at their process values
    std[:, [0, 1, 3]] *= INITIAL_POSITION_FACTOR
    std[:, [4, 5, 7]] *= INITIAL_VELOCITY_FACTOR
    cov = np.zeros((len(z), 2 * _NDIM, 2 * _NDIM))
    diag = np.arange(2 * _NDIM)
    cov[:, diag, diag] = std**2
    return mean, cov


def predict(mean: FloatArray, cov: FloatArray, dt_s: float | FloatArray) -> tuple[FloatArray, FloatArray]:
    """Both advanced by dt_s seconds (>= 0; one number, or one per track): x += v * dt, P = F P F' + Q(dt)."""
    n = len(mean)
    dt = np.broadcast_to(np.asarray(dt_s, dtype=np.float64), (n,))
    if not np.all(np.isfinite(dt)) or np.any(dt < 0):
        raise ValueError(f"dt_s must be finite and >= 0, got {dt_s!r}")
    new_mean = mean.copy()
    new_mean[:, :_NDIM] += dt[:, None] * mean[:, _NDIM:]
    f = np.broadcast_to(_EYE, (n, 2 * _NDIM, 2 * _NDIM)).copy()
    pos = np.arange(_NDIM)
    f[:, pos, pos + _NDIM] = dt[:, None]
    new_cov = f @ cov @ f.transpose(0, 2, 1)
    diag = np.arange(2 * _NDIM)
    new_cov[:, diag, diag] += _process_std(mean[:, 3]) ** 2 * (dt / REFERENCE_PERIOD_S)[:, None]
    return new_mean, new_cov


def update(mean: FloatArray, cov: FloatArray, xyah: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Both corrected by one measurement (cx, cy, a, h) per track (N x 4)."""
    z = np.asarray(xyah, dtype=np.float64).reshape(-1, _NDIM)
    pos = POSITION_STD_WEIGHT * mean[:, 3]
    r = np.stack([pos, pos, np.full_like(pos, ASPECT_MEASUREMENT_STD), pos], axis=1) ** 2
    s = cov[:, :_NDIM, :_NDIM].copy()
    diag = np.arange(_NDIM)
    s[:, diag, diag] += r
    # K = P H' S^-1, and as P and S are symmetric, K' = S^-1 H P: one batched solve, no inverse
    gain = np.linalg.solve(s, cov[:, :_NDIM, :]).transpose(0, 2, 1)
    innovation = z - mean[:, :_NDIM]
    new_mean = mean + (gain @ innovation[:, :, None])[:, :, 0]
    new_cov = cov - gain @ s @ gain.transpose(0, 2, 1)
    # rounding makes the difference drift from symmetric over a long track; the filter assumes it is
    new_cov = (new_cov + new_cov.transpose(0, 2, 1)) / 2
    return new_mean, new_cov
