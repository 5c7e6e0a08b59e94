"""Head pose from 468 landmarks: synthetic faces of known pose, projected, maybe noised, then solved."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from framequeue.pipelines.driver import headpose
from framequeue.pipelines.driver.headpose import (
    NOSE_TIP,
    HeadPose,
    angles_from_rotation,
    camera_matrix,
    head_box_corners,
    load_canonical_face,
    project,
    rotation_from_angles,
    solve_head_pose,
)
from tests.conftest import require_shared

WIDTH_PX, HEIGHT_PX, FOCAL_PX = 640, 480, 640.0
K = camera_matrix(WIDTH_PX, HEIGHT_PX, FOCAL_PX)
#: the model's outer eye corners: the subject's right eye (image left) and left eye (image right)
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263
#: yaw, pitch, roll of the grids, degrees
GRID = list(itertools.product(range(-50, 51, 25), range(-30, 31, 15), range(-20, 21, 10)))

Angles = tuple[float, float, float]


@pytest.fixture(scope="module")
def model() -> np.ndarray:
    return load_canonical_face(require_shared("models", "mediapipe", "canonical_face_model.obj"))


def landmarks(
    model: np.ndarray,
    angles: Angles,
    tvec_cm: tuple[float, float, float] = (0.0, 0.0, 60.0),
    camera: np.ndarray = K,
) -> np.ndarray:
    """468x2 pixels of the model under this pose, projected by OpenCV itself (not by the module)."""
    rvec, _ = cv2.Rodrigues(rotation_from_angles(*angles))
    points, _ = cv2.projectPoints(model, rvec, np.array(tvec_cm), camera, None)
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)


def angle_errors(pose: HeadPose | None, truth: Angles) -> np.ndarray:
    """|solved - truth| per angle, degrees, wrapped so that 179 vs -179 is 2."""
    assert pose is not None
    got = np.array([pose.yaw_deg, pose.pitch_deg, pose.roll_deg])
    return np.abs((got - np.array(truth) + 180.0) % 360.0 - 180.0)


def random_poses(rng: np.random.Generator, n: int) -> list[tuple[Angles, tuple[float, float, float]]]:
    """n (angles, tvec) with yaw ±50, pitch ±30, roll ±20 degrees, the head near the image centre at ~60 cm."""
    return [
        (
            (rng.uniform(-50, 50), rng.uniform(-30, 30), rng.uniform(-20, 20)),
            (rng.uniform(-5, 5), rng.uniform(-5, 5), rng.uniform(50, 70)),
        )
        for _ in range(n)
    ]


# --- the model file and the camera


def test_canonical_model_is_468_vertices_in_cm_face_toward_plus_z(model: np.ndarray) -> None:
    assert model.shape == (468, 3) and model.dtype == np.float64
    nose = model[NOSE_TIP]
    assert nose[0] == 0.0 and nose[2] > np.percentile(model[:, 2], 99)  # on the midline, sticking out most
    assert nose[1] < model[RIGHT_EYE_OUTER, 1]  # below the eyes: y is up
    assert model[RIGHT_EYE_OUTER, 0] < 0 < model[LEFT_EYE_OUTER, 0]
    assert 12 < np.ptp(model[:, 0]) < 20  # a face's width in cm


def test_model_with_wrong_vertex_count_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "short.obj"
    path.write_text("# a triangle\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(ValueError, match=r"short\.obj.*468.*found 3"):
        load_canonical_face(path)
    path.write_text("v 0 zero 0\n")
    with pytest.raises(ValueError, match=r"short\.obj"):
        load_canonical_face(path)


def test_camera_matrix() -> None:
    assert np.array_equal(camera_matrix(640, 480, 500), [[500, 0, 320], [0, 500, 240], [0, 0, 1]])
    with pytest.raises(ValueError):
        camera_matrix(640, 480, 0)


# --- the angle convention


def test_frontal_face_is_zero_angles_and_a_flip_of_the_model_axes() -> None:
    assert np.allclose(rotation_from_angles(0, 0, 0), np.diag([1.0, -1.0, -1.0]))
    assert angles_from_rotation(np.diag([1.0, -1.0, -1.0])) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    "angles", [*GRID, (170.0, 10.0, -175.0), (0.0, 90.0, 0.0), (30.0, -90.0, 0.0), (0.0, 0.0, 180.0)]
)
def test_angles_round_trip(angles: Angles) -> None:
    rotation = rotation_from_angles(*angles)
    assert np.allclose(rotation @ rotation.T, np.eye(3)) and np.linalg.det(rotation) == pytest.approx(1.0)
    assert np.allclose(angles_from_rotation(rotation), angles, atol=1e-6)


def test_angles_are_half_open() -> None:
    """-180 and 180 are one pose and read 180, also when rounding lands a hair above -180."""
    assert angles_from_rotation(rotation_from_angles(0, 0, -180))[2] == 180.0
    assert angles_from_rotation(rotation_from_angles(-180, 0, 0))[0] == 180.0


def test_yaw_turns_the_nose_toward_the_image_left(model: np.ndarray) -> None:
    frontal, turned = landmarks(model, (0, 0, 0)), landmarks(model, (20, 0, 0))
    assert turned[NOSE_TIP, 0] < frontal[NOSE_TIP, 0] - 20  # pixels
    pose = solve_head_pose(turned, model, K)
    assert pose is not None and pose.yaw_deg == pytest.approx(20.0, abs=1e-6)


def test_pitch_tilts_the_face_down(model: np.ndarray) -> None:
    frontal, down = landmarks(model, (0, 0, 0)), landmarks(model, (0, 15, 0))
    assert down[NOSE_TIP, 1] > frontal[NOSE_TIP, 1] + 10
    # the chin goes back toward the neck (away from the camera) as the face tilts down
    chin = 152
    rotation = rotation_from_angles(0, 15, 0)
    assert (rotation @ model[chin])[2] > (rotation_from_angles(0, 0, 0) @ model[chin])[2]
    pose = solve_head_pose(down, model, K)
    assert pose is not None and pose.pitch_deg == pytest.approx(15.0, abs=1e-6)


def test_roll_tilts_the_head_clockwise_in_the_image(model: np.ndarray) -> None:
    tilted = landmarks(model, (0, 0, 10))
    left_in_image, right_in_image = tilted[RIGHT_EYE_OUTER], tilted[LEFT_EYE_OUTER]
    assert left_in_image[0] < right_in_image[0]
    dx, dy = right_in_image - left_in_image
    # image y points down: the eye line's right end lower = a clockwise turn of +10 degrees
    assert math.degrees(math.atan2(dy, dx)) == pytest.approx(10.0, abs=0.5)
    pose = solve_head_pose(tilted, model, K)
    assert pose is not None and pose.roll_deg == pytest.approx(10.0, abs=1e-6)


# --- accuracy


def test_noise_free_grid_is_exact(model: np.ndarray) -> None:
    worst = np.zeros(3)
    for angles in GRID:
        pose = solve_head_pose(landmarks(model, angles, (4.0, -3.0, 60.0)), model, K)
        worst = np.maximum(worst, angle_errors(pose, angles))
        assert pose is not None and pose.reprojection_error_px < 1e-6
        assert pose.tvec == pytest.approx([4.0, -3.0, 60.0], abs=1e-6)
    assert (worst <= 0.1).all(), worst


def test_one_pixel_noise(model: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    errors = []
    for angles, tvec in random_poses(rng, 300):
        noisy = landmarks(model, angles, tvec) + rng.normal(0.0, 1.0, (468, 2))
        pose = solve_head_pose(noisy, model, K)
        errors.append(angle_errors(pose, angles))
        assert pose is not None and 0.8 < pose.reprojection_error_px < 1.6  # ≈ sqrt(2) σ less the fit
    e = np.array(errors)
    assert (np.percentile(e, 95, axis=0) <= 1.0).all(), np.percentile(e, 95, axis=0)
    assert (e.max(axis=0) <= 2.0).all(), e.max(axis=0)


@pytest.mark.parametrize("focal_factor", [0.7, 1.4])
def test_wrong_focal_length(model: np.ndarray, focal_factor: float) -> None:
    wrong = camera_matrix(WIDTH_PX, HEIGHT_PX, FOCAL_PX * focal_factor)
    rng = np.random.default_rng(11)
    errors = []
    for angles, tvec in random_poses(rng, 200):
        noisy = landmarks(model, angles, tvec) + rng.normal(0.0, 1.0, (468, 2))
        errors.append(angle_errors(solve_head_pose(noisy, model, wrong), angles))
    p95 = np.percentile(np.array(errors), 95, axis=0)
    assert (p95 <= 4.0).all(), p95


def test_no_flips_over_the_grid(model: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    for angles in GRID:
        noisy = landmarks(model, angles) + rng.normal(0.0, 1.0, (468, 2))
        errors = angle_errors(solve_head_pose(noisy, model, K), angles)
        assert (errors < 90.0).all(), (angles, errors)
        assert (errors < 2.0).all(), (angles, errors)


# --- seeding and rejection


class SolvePnPSpy:
    """Wraps cv2.solvePnP and records each call's flags and whether it had a guess."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []
        self._real = cv2.solvePnP

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((kwargs.get("flags", cv2.SOLVEPNP_ITERATIVE), bool(kwargs.get("useExtrinsicGuess"))))
        return self._real(*args, **kwargs)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> SolvePnPSpy:
    s = SolvePnPSpy()
    monkeypatch.setattr(headpose.cv2, "solvePnP", s)
    return s


def test_seeded_solve_converges_to_the_same_pose(model: np.ndarray, spy: SolvePnPSpy) -> None:
    rng = np.random.default_rng(5)
    last = solve_head_pose(landmarks(model, (28.0, -9.0, 6.0)), model, K)
    now = (30.0, -10.0, 5.0)
    points = landmarks(model, now, (1.0, 0.5, 61.0)) + rng.normal(0.0, 1.0, (468, 2))
    spy.calls.clear()
    seeded = solve_head_pose(points, model, K, previous=last)
    assert spy.calls == [(cv2.SOLVEPNP_ITERATIVE, True)]  # the seed alone, no fresh start
    fresh = solve_head_pose(points, model, K)
    assert seeded is not None and fresh is not None
    assert np.allclose(
        (seeded.yaw_deg, seeded.pitch_deg, seeded.roll_deg), (fresh.yaw_deg, fresh.pitch_deg, fresh.roll_deg), atol=1e-4
    )
    assert (angle_errors(seeded, now) < 1.0).all()
    assert seeded.reprojection_error_px == pytest.approx(fresh.reprojection_error_px, rel=1e-6)


def test_a_pose_behind_the_camera_is_rejected_and_retried_fresh(model: np.ndarray, spy: SolvePnPSpy) -> None:
    """A face at z = -60 projects exactly; seeded with that pose, LM stays there, and it must not come back."""
    rvec, _ = cv2.Rodrigues(rotation_from_angles(0, 0, 0))
    tvec = np.array([0.0, 0.0, -60.0])
    points, _ = cv2.projectPoints(model, rvec, tvec, K, None)
    behind = HeadPose(rvec.reshape(3), tvec, 0.0, 0.0, 0.0, 0.0)
    pose = solve_head_pose(points.reshape(-1, 2), model, K, previous=behind)
    assert spy.calls[0] == (cv2.SOLVEPNP_ITERATIVE, True)
    assert (cv2.SOLVEPNP_SQPNP, False) in spy.calls[1:]  # rejected, then solved from scratch once
    assert pose is None or (pose.tvec[2] > 0 and np.isfinite(pose.rvec).all())


@pytest.mark.parametrize(
    "points",
    [
        np.full((468, 2), np.nan),
        np.full((468, 2), np.inf),
        np.full((468, 2), 320.0),
        np.column_stack([np.linspace(0, 640, 468), np.linspace(0, 480, 468)]),
        np.random.default_rng(0).uniform(0, 640, (468, 2)),
    ],
    ids=["nan", "inf", "one-point", "a-line", "uniform-noise"],
)
def test_garbage_gives_none_not_an_exception(model: np.ndarray, points: np.ndarray) -> None:
    pose = solve_head_pose(points, model, K)
    assert pose is None or pose.reprojection_error_px > 20


def test_one_nan_landmark_gives_none(model: np.ndarray) -> None:
    points = landmarks(model, (0, 0, 0))
    points[100] = np.nan
    assert solve_head_pose(points, model, K) is None


def test_shape_mismatch_is_a_value_error(model: np.ndarray) -> None:
    with pytest.raises(ValueError):
        solve_head_pose(np.zeros((6, 2)), model, K)
    with pytest.raises(ValueError):
        solve_head_pose(np.zeros((468, 3)), model, K)
    with pytest.raises(ValueError):
        solve_head_pose(np.zeros((468, 2)), model, K[:2])


# --- drawing helpers


def test_project_matches_the_landmarks(model: np.ndarray) -> None:
    points = landmarks(model, (12.0, 8.0, -4.0), (-3.0, 2.0, 55.0))
    pose = solve_head_pose(points, model, K)
    assert pose is not None
    assert np.allclose(project(model, pose, K), points, atol=1e-6)
    assert project(model[NOSE_TIP], pose, K).shape == (1, 2)


def test_head_box_sticks_out_of_the_face_toward_the_camera(model: np.ndarray) -> None:
    corners = head_box_corners(model)
    assert corners.shape == (8, 3)
    rear, front = corners[:4], corners[4:]
    assert np.allclose(rear[:, 2], model[:, 2].mean()) and np.allclose(front[:, 2], rear[:, 2] + 10.0)
    assert np.ptp(rear[:, 0]) == pytest.approx(np.ptp(model[:, 1]))  # as wide as the face is tall (the larger)
    frontal = HeadPose(cv2.Rodrigues(rotation_from_angles(0, 0, 0))[0].reshape(3), np.array([0, 0, 60.0]), 0, 0, 0, 0)
    rear_px, front_px = project(rear, frontal, K), project(front, frontal, K)
    assert np.ptp(front_px[:, 0]) > 1.3 * np.ptp(rear_px[:, 0])  # larger and nearer
    for square in (rear_px, front_px):  # top-left, top-right, bottom-right, bottom-left in the image
        tl, tr, br, bl = square
        assert tl[0] < tr[0] and bl[0] < br[0] and tl[1] < bl[1] and tr[1] < br[1]
    with pytest.raises(ValueError):
        head_box_corners(model, depth_cm=0.0)
