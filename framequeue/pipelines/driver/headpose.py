"""3-D head pose from FaceMesh's 468 image landmarks and MediaPipe's canonical face model (`cv2.solvePnP`).

Frames (all right-handed, lengths in cm):

- **model**: `canonical_face_model.obj` as stored: x toward the subject's left (the image's right for a
  frontal face), y up, z out of the face (toward a camera in front of it); vertex 1 is the nose tip.
- **camera**: OpenCV's: x right, y down, z forward into the scene; pixels are `K @ p_camera`, no distortion.
- **pose**: `p_camera = R @ p_model + tvec` with `R = Rodrigues(rvec)`, so `cv2.projectPoints(model, rvec,
  tvec, K, None)` draws it. The axis flip is folded into `R`: a frontal face has `R = diag(1, -1, -1)`
  (180° about x), not the identity.

Angles, **as seen in the image**, from the head rotation `H = R @ diag(1, -1, -1)` (H = I: the face looks
straight into the camera, upright), decomposed as

    H = Ry(yaw) @ Rx(pitch) @ Rz(roll)

with `Ra(θ)` the right-handed rotation by θ about the camera's axis a: turn the head by yaw about the
camera's vertical axis, then nod by pitch about the head's ear-to-ear axis, then tilt by roll about the
head's nose axis (Tait-Bryan, intrinsic y-x'-z''). Since the camera's y points down and z into the scene:

- `yaw_deg > 0`: the nose turns toward the image's LEFT edge (the subject turns to their own right);
- `pitch_deg > 0`: the face tilts DOWN, chin toward chest: the nose moves down in the image;
- `roll_deg > 0`: the head tilts CLOCKWISE in the image: the eye on the image's right goes down.

Read back as `pitch = asin(-H[1,2])`, `yaw = atan2(H[0,2], H[2,2])`, `roll = atan2(H[1,0], H[1,1])`;
yaw and roll lie in (-180, 180], pitch in [-90, 90]; at pitch ±90 (never a head) roll is set to 0.

The solve always uses all 468 points: a 6-point subset is ambiguous and flips 180° in roll.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np

__all__ = [
    "NOSE_TIP",
    "N_LANDMARKS",
    "HeadPose",
    "angles_from_rotation",
    "camera_matrix",
    "head_box_corners",
    "load_canonical_face",
    "project",
    "rotation_from_angles",
    "solve_head_pose",
]

#: vertices of the canonical face model and landmarks of FaceMesh (without the iris refinement)
N_LANDMARKS: Final = 468
#: vertex index of the nose tip in the canonical model and in FaceMesh's output
NOSE_TIP: Final = 1
#: model axes -> camera axes for a frontal face (180° about x): y up -> down, toward-camera -> -z
_FLIP: Final = np.diag([1.0, -1.0, -1.0])
#: below this |cos(pitch)| yaw and roll share one axis (gimbal lock)
_GIMBAL_EPS: Final = 1e-9
#: angles this close above -180 degrees are read as 180
_WRAP_EPS_DEG: Final = 1e-9


@dataclass(frozen=True, eq=False)
class HeadPose:
    """One frame's head pose; compare fields, not poses (arrays make `==` ambiguous)."""

    #: (3,) float64 Rodrigues vector of R, model -> camera
    rvec: np.ndarray
    #: (3,) float64 model origin in camera coordinates, cm (z > 0: in front of the camera)
    tvec: np.ndarray
    #: + = nose toward the image's left edge, degrees in (-180, 180]
    yaw_deg: float
    #: + = face tilted down, degrees in [-90, 90]
    pitch_deg: float
    #: + = head tilted clockwise in the image, degrees in (-180, 180]
    roll_deg: float
    #: RMS distance between the landmarks and the reprojected model, pixels
    reprojection_error_px: float


def load_canonical_face(path: Path) -> np.ndarray:
    """The 468x3 float64 vertices (cm) of MediaPipe's `canonical_face_model.obj`; ValueError otherwise."""
    vertices = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("v "):
                try:
                    vertices.append([float(v) for v in line.split()[1:4]])
                except ValueError as exc:
                    raise ValueError(f"{path}: bad vertex line {line.strip()!r}") from exc
    points = np.asarray(vertices, dtype=np.float64)
    if points.shape != (N_LANDMARKS, 3):
        raise ValueError(f"{path}: expected {N_LANDMARKS} 'v x y z' vertices, found {len(vertices)}")
    return points


def camera_matrix(width_px: float, height_px: float, focal_px: float) -> np.ndarray:
    """3x3 pinhole intrinsics: square pixels, principal point at the image centre."""
    if not (width_px > 0 and height_px > 0 and focal_px > 0):
        raise ValueError(f"width, height and focal must be positive: {width_px}, {height_px}, {focal_px}")
    return np.array(
        [[focal_px, 0.0, width_px / 2.0], [0.0, focal_px, height_px / 2.0], [0.0, 0.0, 1.0]], dtype=np.float64
    )


def rotation_from_angles(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """R (model -> camera, 3x3) of a head with these angles, in the module's convention."""
    a, b, c = (math.radians(v) for v in (yaw_deg, pitch_deg, roll_deg))
    ry = np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(b), -math.sin(b)], [0.0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0.0], [math.sin(c), math.cos(c), 0.0], [0.0, 0.0, 1.0]])
    return np.asarray(ry @ rx @ rz @ _FLIP, dtype=np.float64)


def angles_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw_deg, pitch_deg, roll_deg) of R (model -> camera): the inverse of `rotation_from_angles`."""
    h = np.asarray(rotation, dtype=np.float64) @ _FLIP
    pitch = math.asin(max(-1.0, min(1.0, -h[1, 2])))
    if math.cos(pitch) > _GIMBAL_EPS:
        yaw = math.atan2(h[0, 2], h[2, 2])
        roll = math.atan2(h[1, 0], h[1, 1])
    else:
        # only yaw - roll (pitch +90) or yaw + roll (pitch -90) is defined; give it all to yaw
        yaw = math.atan2(math.copysign(1.0, -h[1, 2]) * h[0, 1], h[0, 0])
        roll = 0.0
    return _half_open_deg(yaw), math.degrees(pitch), _half_open_deg(roll)


def _half_open_deg(angle_rad: float) -> float:
    """Radians in [-π, π] as degrees in (-180, 180]: -180 and 180 are one pose, keep one name."""
    deg = math.degrees(angle_rad)
    # atan2 of a rotation built from -180 lands a rounding error above -180
    return 180.0 if deg <= -180.0 + _WRAP_EPS_DEG else deg


def solve_head_pose(
    points_xy: np.ndarray, model_points: np.ndarray, camera: np.ndarray, previous: HeadPose | None = None
) -> HeadPose | None:
    """The pose fitting Nx2 landmarks (pixels) to the Nx3 model, or None when there is no usable one.

    With `previous` (the last frame's pose) the solve starts from it (iterative, Levenberg-Marquardt);
    without one, or when that start ends somewhere rejected, SQPnP gives the start. Rejected (None):
    non-finite landmarks or solution, any model point at or behind the camera plane, a solver error.
    Shapes that do not match raise ValueError (a caller's bug, not a bad frame).
    """
    image = np.ascontiguousarray(points_xy, dtype=np.float64)
    model = np.ascontiguousarray(model_points, dtype=np.float64)
    if model.ndim != 2 or model.shape[1] != 3 or model.shape[0] < 6 or image.shape != (model.shape[0], 2):
        raise ValueError(f"expected Nx2 image points and Nx3 model points, N >= 6: {image.shape}, {model.shape}")
    if np.asarray(camera).shape != (3, 3):
        raise ValueError(f"camera must be a 3x3 matrix, got shape {np.asarray(camera).shape}")
    k = np.asarray(camera, dtype=np.float64)
    if not (np.isfinite(image).all() and np.isfinite(k).all()):
        return None
    if previous is not None:
        pose = _solve(image, model, k, (previous.rvec, previous.tvec))
        if pose is not None:
            return pose
    return _solve(image, model, k, None)


def _solve(
    image: np.ndarray, model: np.ndarray, k: np.ndarray, guess: tuple[np.ndarray, np.ndarray] | None
) -> HeadPose | None:
    try:
        if guess is None:
            ok, rvec, tvec = cv2.solvePnP(model, image, k, None, flags=cv2.SOLVEPNP_SQPNP)
            if not ok:
                return None
        else:
            rvec, tvec = (np.array(v, dtype=np.float64).reshape(3, 1) for v in guess)
        # SQPnP minimises an object-space error; the refine minimises the pixel error the RMS reports
        ok, rvec, tvec = cv2.solvePnP(
            model, image, k, None, rvec=rvec, tvec=tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE
        )
    except cv2.error:
        return None
    if not ok:
        return None
    rvec, tvec = np.asarray(rvec, dtype=np.float64).reshape(3), np.asarray(tvec, dtype=np.float64).reshape(3)
    if not (np.isfinite(rvec).all() and np.isfinite(tvec).all()):
        return None
    rotation, _ = cv2.Rodrigues(rvec)
    if not ((model @ rotation.T + tvec)[:, 2] > 0).all():
        return None
    projected, _ = cv2.projectPoints(model, rvec, tvec, k, None)
    rms_px = float(np.sqrt(np.mean(np.sum((projected.reshape(-1, 2) - image) ** 2, axis=1))))
    yaw, pitch, roll = angles_from_rotation(rotation)
    return HeadPose(rvec, tvec, yaw, pitch, roll, rms_px)


def project(model_points: np.ndarray, pose: HeadPose, camera: np.ndarray) -> np.ndarray:
    """Nx2 pixels of Nx3 model points (cm) under the pose; meaningless for points behind the camera."""
    points = np.ascontiguousarray(model_points, dtype=np.float64).reshape(-1, 3)
    projected, _ = cv2.projectPoints(points, pose.rvec, pose.tvec, np.asarray(camera, dtype=np.float64), None)
    return np.asarray(projected, dtype=np.float64).reshape(-1, 2)


def head_box_corners(model_points: np.ndarray, depth_cm: float = 10.0, front_scale: float = 1.3) -> np.ndarray:
    """8x3 model-space corners (cm) of a frustum sticking out of the face along its gaze, for drawing.

    Rows 0-3: the rear square, centred on the model's x/y extent, as wide as its larger side, at the
    model's mean depth (about the eyes and cheeks); rows 4-7: the front square, `front_scale` times wider
    and `depth_cm` nearer the camera. Each square runs top-left, top-right, bottom-right, bottom-left as
    a frontal face is seen.
    """
    points = np.asarray(model_points, dtype=np.float64)
    if not (depth_cm > 0 and front_scale > 0):
        raise ValueError(f"depth_cm and front_scale must be positive: {depth_cm}, {front_scale}")
    low, high = points.min(axis=0), points.max(axis=0)
    cx, cy = (low[:2] + high[:2]) / 2.0
    half = float(np.max(high[:2] - low[:2])) / 2.0
    rear_z = float(points[:, 2].mean())
    # model y is up: the image's top row is +y, its left column -x
    unit = np.array([[-1.0, 1.0], [1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
    rear = np.column_stack([cx + half * unit[:, 0], cy + half * unit[:, 1], np.full(4, rear_z)])
    front_half = half * front_scale
    front = np.column_stack([cx + front_half * unit[:, 0], cy + front_half * unit[:, 1], np.full(4, rear_z + depth_cm)])
    return np.vstack([rear, front])
