"""Which vehicle is the lead: the candidate rules, the path test (ego lane or corridor) and the selector's
hysteresis, with times passed in at 25 fps (nothing sleeps), and the whole chain on a mirrored scene."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from framequeue.pipelines.road.geometry import Camera, camera_for, distance_from_width_m
from framequeue.pipelines.road.lanes import EgoLane, LaneSmoother
from framequeue.pipelines.road.lead import (
    EDGE_MARGIN_SHARE,
    Candidate,
    LeadConfig,
    LeadSelector,
    in_path,
    is_candidate,
)
from framequeue.pipelines.road.params import VEHICLE_WIDTHS_M

W, H = 960, 540
BOTTOM_Y = H - 1
PERIOD_S = 1 / 25
CONFIG = LeadConfig()
CAMERA = camera_for(None, W, H)
MARGIN = EDGE_MARGIN_SHARE * W
#: the hood band starts at this row: a box centred on or below it is the ego vehicle's bonnet
HOOD_Y = H * (1.0 - CONFIG.hood_fraction)


def straight(x_bottom: float, vp: tuple[float, float] = (480.0, 260.0), y_top: float = 280.0) -> np.ndarray:
    y = np.linspace(y_top, BOTTOM_Y, 12)
    x = vp[0] + (x_bottom - vp[0]) * (y - vp[1]) / (BOTTOM_Y - vp[1])
    return np.stack((x, y), axis=1).astype(np.float32)


def ego_for(polylines: Sequence[npt.NDArray[np.float32]], width_px: int = W) -> EgoLane | None:
    smoother = LaneSmoother(width_px, H)
    smoother.update(0.0, polylines, [0.9] * len(polylines))
    return smoother.ego_lane()


# --- is_candidate -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "box", "score", "known", "expected"),
    [
        ("a car ahead", (400, 250, 560, 350), 0.9, True, True),
        ("score at min_score", (400, 250, 560, 350), CONFIG.min_score, True, True),
        ("score just below min_score", (400, 250, 560, 350), CONFIG.min_score - 1e-6, True, False),
        ("unknown class", (400, 250, 560, 350), 0.9, False, False),
        ("zero width", (400, 250, 400, 350), 0.9, True, False),
        ("negative width", (560, 250, 400, 350), 0.9, True, False),
        ("left side on the margin", (MARGIN, 250, 200, 350), 0.9, True, False),
        ("left side at 0", (0, 250, 200, 350), 0.9, True, False),
        ("left side past the margin", (MARGIN + 0.5, 250, 200, 350), 0.9, True, True),
        ("right side on the margin", (760, 250, W - MARGIN, 350), 0.9, True, False),
        ("right side at the edge", (760, 250, W, 350), 0.9, True, False),
        ("right side before the margin", (760, 250, W - MARGIN - 0.5, 350), 0.9, True, True),
        ("centred on the hood band's top", (400, HOOD_Y - 40, 560, HOOD_Y + 40), 0.9, True, False),
        ("centred in the hood band", (380, 450, 580, 539), 0.9, True, False),
        ("centred just above the hood band", (400, HOOD_Y - 40.5, 560, HOOD_Y + 39.5), 0.9, True, True),
        ("reaching into the hood band, centred above", (300, 300, 660, 530), 0.9, True, True),
    ],
)
def test_is_candidate(name: str, box: tuple[float, ...], score: float, known: bool, expected: bool) -> None:
    assert is_candidate(box, score, known, (W, H), CONFIG) is expected, name


def test_the_hood_band_follows_the_config() -> None:
    box = (400, 400, 560, 480)  # centred at row 440: in a 25 % band, above a 12 % one
    assert is_candidate(box, 0.9, True, (W, H), LeadConfig(hood_fraction=0.12))
    assert not is_candidate(box, 0.9, True, (W, H), LeadConfig(hood_fraction=0.25))


def test_the_edge_margin_scales_with_the_frame_width() -> None:
    wide = 1920
    margin = EDGE_MARGIN_SHARE * wide
    assert not is_candidate((margin, 250, 300, 350), 0.9, True, (wide, H), CONFIG)
    assert is_candidate((margin + 0.5, 250, 300, 350), 0.9, True, (wide, H), CONFIG)
    assert not is_candidate((1500, 250, wide - margin, 350), 0.9, True, (wide, H), CONFIG)


# --- in_path ----------------------------------------------------------------------------------------------------


def box_at(x_bottom_centre: float, y_bottom: float, width: float = 60.0, height: float = 50.0) -> list[float]:
    return [x_bottom_centre - width / 2, y_bottom - height, x_bottom_centre + width / 2, y_bottom]


def test_in_path_with_an_ego_lane_tests_the_bottom_centre() -> None:
    ego = ego_for([straight(250.0), straight(710.0)])
    assert ego is not None
    top = float(ego.polygon[:, 1].min())
    # bottom-centre inside, box centre above the lane's top
    assert in_path(box_at(480.0, top + 20, height=80), ego, CAMERA, 30.0, CONFIG)
    # straight ahead but touching the road above where the lanes are known: not in the lane
    assert not in_path(box_at(480.0, top - 10), ego, CAMERA, 30.0, CONFIG)
    # a vehicle in the next lane whose box reaches over the lane line
    assert not in_path([160.0, 400.0, 300.0, 500.0], ego, CAMERA, 8.0, CONFIG)
    assert in_path([260.0, 400.0, 400.0, 500.0], ego, CAMERA, 8.0, CONFIG)


def test_with_an_ego_lane_the_corridor_does_not_apply() -> None:
    ego = ego_for([straight(250.0), straight(710.0)])
    assert ego is not None
    outside_lane = box_at(900.0, 530.0)  # 0.04 m right of the line of sight at 0.1 m: in the corridor
    assert in_path(outside_lane, None, CAMERA, 0.1, CONFIG)
    assert not in_path(outside_lane, ego, CAMERA, 0.1, CONFIG)
    inside_lane = box_at(690.0, 530.0)  # 4.4 m right at 20 m: out of the corridor
    assert not in_path(inside_lane, None, CAMERA, 20.0, CONFIG)
    assert in_path(inside_lane, ego, CAMERA, 20.0, CONFIG)


@pytest.mark.parametrize("distance_m", [5.0, 7.5, 10.0, 20.0, 30.0, 60.0])
@pytest.mark.parametrize("side", [-1.0, 1.0])
@pytest.mark.parametrize(
    ("offset_m", "expected"), [(0.0, True), (1.49, True), (1.5, True), (1.51, False), (3.0, False)]
)
def test_in_path_without_an_ego_lane_is_the_corridor(
    distance_m: float, side: float, offset_m: float, expected: bool
) -> None:
    x = CAMERA.cx_px + side * offset_m * CAMERA.focal_px / distance_m
    assert in_path(box_at(x, 400.0), None, CAMERA, distance_m, CONFIG) is expected


def test_the_corridor_uses_the_cameras_focal_length() -> None:
    narrow = camera_for({"hfov_deg": 30.0}, W, H)  # a longer focal length: the same metres span more pixels
    x = CAMERA.cx_px + 1.4 * CAMERA.focal_px / 20.0  # 1.4 m at 20 m with the default camera
    assert in_path(box_at(x, 400.0), None, CAMERA, 20.0, CONFIG)
    assert in_path(box_at(x, 400.0), None, narrow, 20.0, CONFIG)
    far = CAMERA.cx_px + 1.6 * narrow.focal_px / 20.0  # 1.6 m with the narrow camera ...
    assert not in_path(box_at(far, 400.0), None, narrow, 20.0, CONFIG)
    assert in_path(box_at(far, 400.0), None, CAMERA, 10.0, CONFIG)  # ... under 1.5 m with the default at 10 m


# --- LeadSelector -----------------------------------------------------------------------------------------------


def leads(frames: Sequence[Sequence[Candidate]], config: LeadConfig = CONFIG) -> list[int | None]:
    selector = LeadSelector(config)
    return [selector.update(k * PERIOD_S, candidates) for k, candidates in enumerate(frames)]


A, B, C = 1, 2, 3
LEAD_M = 20.0


def with_challenger(challenger_m: float, frames: int, before: int = 10, after: int = 0) -> list[list[Candidate]]:
    """A alone at LEAD_M for `before` frames, then B at `challenger_m` for `frames`, then B behind A."""
    alone = [[Candidate(A, LEAD_M)]] * before
    challenged = [[Candidate(A, LEAD_M), Candidate(B, challenger_m)]] * frames
    behind = [[Candidate(A, LEAD_M), Candidate(B, LEAD_M * 1.2)]] * after
    return alone + challenged + behind


def test_the_nearest_candidate_becomes_the_lead() -> None:
    assert leads([[Candidate(A, 30.0), Candidate(B, 25.0), Candidate(C, 40.0)]]) == [B]


def test_no_candidates_no_lead_then_the_nearest_at_once() -> None:
    frames = [[Candidate(A, 20.0)], [], [Candidate(A, 20.0), Candidate(B, 19.0)]]
    assert leads(frames) == [A, None, B]


def test_a_candidate_11_percent_nearer_for_0_32_s_takes_over() -> None:
    out = leads(with_challenger(0.89 * LEAD_M, frames=20))
    # the challenge starts on frame 10: still A 0.28 s later (frame 17), B from 0.32 s (frame 18)
    assert out == [A] * 18 + [B] * 12


def test_a_candidate_11_percent_nearer_for_only_0_28_s_does_not() -> None:
    out = leads(with_challenger(0.89 * LEAD_M, frames=8, after=30))
    assert out == [A] * len(out)


def test_a_candidate_9_percent_nearer_never_takes_over() -> None:
    out = leads(with_challenger(0.91 * LEAD_M, frames=200))
    assert out == [A] * len(out)


def test_a_broken_challenge_restarts_the_timer() -> None:
    frames = (
        with_challenger(0.89 * LEAD_M, frames=6)
        + [[Candidate(A, LEAD_M), Candidate(B, 0.95 * LEAD_M)]]  # not near enough for one frame
        + [[Candidate(A, LEAD_M), Candidate(B, 0.89 * LEAD_M)]] * 10
    )
    out = leads(frames)
    assert out == [A] * 25 + [B] * 2  # 8 frames (0.32 s) after the challenge resumed on frame 17


def test_a_challenger_that_changes_identity_restarts_the_timer() -> None:
    frames = (
        [[Candidate(A, LEAD_M)]] * 10
        + [[Candidate(A, LEAD_M), Candidate(B, 0.89 * LEAD_M)]] * 6  # B challenges for 0.2 s
        + [[Candidate(A, LEAD_M), Candidate(B, 0.89 * LEAD_M), Candidate(C, 0.87 * LEAD_M)]] * 12
    )
    out = leads(frames)
    # C is the nearest from frame 16; B's 0.2 s do not count toward it
    assert out == [A] * 24 + [C] * 4


def test_when_the_lead_leaves_the_candidates_the_nearest_takes_over_at_once() -> None:
    frames = (
        [[Candidate(A, 20.0)]]
        + [[Candidate(A, 20.0), Candidate(B, 19.0), Candidate(C, 35.0)]] * 4  # B near, but not 10 % nearer
        + [[Candidate(B, 19.0), Candidate(C, 35.0)]] * 3
    )
    assert leads(frames) == [A] * 5 + [B] * 3


def test_a_farther_lead_is_kept_while_it_stays_a_candidate() -> None:
    frames = [[Candidate(A, 20.0)]] + [[Candidate(A, 20.0 + k), Candidate(B, 21.0)] for k in range(1, 30)]
    # B is 10 % nearer from when A is beyond 23.3 m (frame 4) and takes over 0.32 s later
    assert leads(frames) == [A] * 12 + [B] * 18


# --- the chain on a mirrored scene ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vehicle:
    track_id: int
    class_name: str
    box_xyxy: tuple[float, float, float, float]
    score: float = 0.9


def mirror_box(box: tuple[float, float, float, float], width_px: int) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    return (width_px - x2, y1, width_px - x1, y2)


def lead_of(
    frames: int, vehicles: Sequence[Vehicle], ego: EgoLane | None, camera: Camera, config: LeadConfig = CONFIG
) -> list[int | None]:
    """The small chain RoadSink runs: candidates, distance from the box width, the path test, the selector."""
    selector = LeadSelector(config)
    out = []
    for k in range(frames):
        candidates = []
        for v in vehicles:
            known = v.class_name in VEHICLE_WIDTHS_M
            if not is_candidate(v.box_xyxy, v.score, known, (camera.width_px, camera.height_px), config):
                continue
            width_m = VEHICLE_WIDTHS_M[v.class_name]
            distance = distance_from_width_m(camera.focal_px, width_m, v.box_xyxy[2] - v.box_xyxy[0])
            if in_path(v.box_xyxy, ego, camera, distance, config):
                candidates.append(Candidate(v.track_id, distance))
        out.append(selector.update(k * PERIOD_S, candidates))
    return out


SCENE = [
    Vehicle(1, "car", (470.0, 300.0, 540.0, 350.0)),  # in the ego lane, about 25 m
    Vehicle(2, "truck", (600.0, 320.0, 760.0, 420.0)),  # in the right lane, nearer (15 m)
    Vehicle(3, "car", (380.0, 440.0, 600.0, 530.0)),  # the hood: centred in the hood band
    Vehicle(4, "car", (0.0, 380.0, 700.0, 530.0)),  # nearest, bottom-centre in the lane, cut by the left edge
    Vehicle(5, "person", (420.0, 320.0, 450.0, 400.0)),  # in the lane, not a vehicle
    Vehicle(6, "car", (400.0, 330.0, 520.0, 390.0), score=0.2),  # in the lane, near, a weak detection
]
#: the ego lane's boundaries (not symmetric about the centre) and an outer lane
SCENE_LANES = [straight(250.0), straight(640.0, vp=(500.0, 255.0)), straight(-200.0)]


@pytest.mark.parametrize("width_px", [W, 1000])
def test_a_scene_and_its_mirror_have_the_same_lead(width_px: int) -> None:
    camera = camera_for(None, width_px, H)
    ego = ego_for(SCENE_LANES, width_px)
    ego_m = ego_for([np.stack((width_px - p[:, 0], p[:, 1]), axis=1) for p in SCENE_LANES], width_px)
    assert ego is not None and ego_m is not None
    mirror = [Vehicle(v.track_id, v.class_name, mirror_box(v.box_xyxy, width_px), v.score) for v in SCENE]
    assert lead_of(5, SCENE, ego, camera) == [1] * 5
    assert lead_of(5, mirror[::-1], ego_m, camera) == [1] * 5


def test_a_corridor_scene_and_its_mirror_have_the_same_lead() -> None:
    camera = camera_for({"hfov_deg": 70.0}, W, H)

    def car_at(offset_m: float, z_m: float) -> tuple[float, float, float, float]:
        x = camera.cx_px + offset_m * camera.focal_px / z_m
        half_w = camera.focal_px * VEHICLE_WIDTHS_M["car"] / z_m / 2
        return (x - half_w, 300.0, x + half_w, 360.0)

    scene = [
        Vehicle(7, "car", car_at(1.45, 20.0)),  # 1.45 m right at 20 m: in the corridor
        Vehicle(8, "car", car_at(-1.56, 12.0)),  # nearer, 1.56 m left: out
        Vehicle(9, "car", car_at(1.0, 30.0)),  # in, farther
    ]
    mirror = [Vehicle(v.track_id, v.class_name, mirror_box(v.box_xyxy, W), v.score) for v in scene]
    assert lead_of(3, scene, None, camera) == [7] * 3
    assert lead_of(3, mirror, None, camera) == [7] * 3
