"""The road overlay on synthetic frames: what it tints, what it leaves alone, the lead's colour by time gap,
the banner, labels at the image edges, line widths that scale with the frame, and the label texts."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from framequeue.pipelines.road.overlay import (
    BANNER,
    EGO_ALPHA,
    EGO_FILL,
    GAP_AMBER,
    GAP_GREEN,
    GAP_RED,
    GAP_UNKNOWN,
    LANE_LINE,
    LeadView,
    RoadView,
    TrackView,
    draw_road,
    draw_segments,
    format_clock,
    gap_colour,
    lead_segments,
)

GREY = 100
SIZES_WH = [(854, 480), (1280, 720), (1920, 1080)]

Image = npt.NDArray[np.uint8]


def blank(width: int, height: int, value: int = GREY) -> Image:
    return np.full((height, width, 3), value, np.uint8)


def changed(before: Image, after: Image) -> npt.NDArray[np.bool_]:
    diff: npt.NDArray[np.bool_] = np.any(before != after, axis=2)
    return diff


def reddish(scene: Image) -> npt.NDArray[np.bool_]:
    b, g, r = (scene[:, :, c].astype(np.int32) for c in range(3))
    return (r > 150) & (g < 90) & (b < 90)


def full_view(width: int, height: int) -> RoadView:
    """A frame's view with every element but a banner, placed as shares of the frame."""
    ego = np.array(
        [
            [0.45 * width, 0.55 * height],
            [0.2 * width, height - 1.0],
            [0.75 * width, height - 1.0],
            [0.55 * width, 0.55 * height],
        ]
    )
    left = np.array([[0.45 * width, 0.55 * height], [0.2 * width, height - 1.0]])
    right = np.array([[0.55 * width, 0.55 * height], [0.75 * width, height - 1.0]])
    return RoadView(
        t_s=12.5,
        speed_mps=20.0,
        lanes=[left, right],
        ego_polygon=ego,
        tracks=[
            TrackView(1, "car", (0.46 * width, 0.5 * height, 0.54 * width, 0.6 * height)),
            TrackView(2, "truck", (0.6 * width, 0.45 * height, 0.7 * width, 0.58 * height)),
        ],
        lead=LeadView(1, (0.46 * width, 0.5 * height, 0.54 * width, 0.6 * height), 22.0, 1.1, None),
    )


# --- what is drawn where ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), SIZES_WH)
def test_draw_road_tints_the_ego_lane_and_leaves_the_rest_alone(width: int, height: int) -> None:
    before = blank(width, height)
    scene = before.copy()
    view = full_view(width, height)
    out = draw_road(scene, view)
    assert out is scene
    # inside the ego polygon, away from lines, boxes and labels: (1 - alpha) x grey + alpha x EGO_FILL
    y, x = round(0.85 * height), round(0.47 * width)
    expected = [(1 - EGO_ALPHA) * GREY + EGO_ALPHA * c for c in EGO_FILL]
    np.testing.assert_allclose(scene[y, x], expected, atol=1.0)
    assert all(abs(int(p) - f) < abs(GREY - f) for p, f in zip(scene[y, x], EGO_FILL, strict=True) if f != GREY)
    # outside every element (polygon, lines, boxes with their labels, the speed/clock tab): untouched
    assert view.ego_polygon is not None
    polygon = np.zeros((height, width), np.uint8)
    cv2.fillPoly(polygon, [np.rint(view.ego_polygon).astype(np.int32)], 255)
    # the polygon with its lane lines along the sides
    allowed = cv2.dilate(polygon, np.ones((9, 9), np.uint8)).astype(bool)
    allowed[round(0.35 * height) : round(0.63 * height), round(0.44 * width) : round(0.72 * width)] = True  # boxes
    allowed[: round(0.12 * height), : round(0.45 * width)] = True  # speed and clock
    diff = changed(before, scene)
    assert diff.any()
    assert not (diff & ~allowed).any(), np.argwhere(diff & ~allowed)[:5]
    assert (~allowed).mean() > 0.5  # the check covers most of the frame


@pytest.mark.parametrize(("width", "height"), SIZES_WH)
def test_without_an_ego_polygon_the_road_is_not_tinted(width: int, height: int) -> None:
    scene = blank(width, height)
    draw_road(scene, replace(full_view(width, height), ego_polygon=None))
    assert scene[round(0.85 * height), round(0.47 * width)].tolist() == [GREY] * 3


def test_an_ego_polygon_partly_outside_the_frame_is_clipped() -> None:
    scene = blank(640, 360)
    polygon = np.array([[-100.0, 200.0], [-100.0, 500.0], [300.0, 500.0], [300.0, 200.0]])
    draw_road(scene, RoadView(t_s=0.0, speed_mps=None, ego_polygon=polygon))
    assert scene[300, 10].tolist() != [GREY] * 3
    assert scene[300, 320].tolist() == [GREY] * 3


# --- the lead's colour ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("time_gap_s", "colour"),
    [
        (10.0, GAP_GREEN),
        (2.0, GAP_GREEN),
        (1.99, GAP_AMBER),
        (1.0, GAP_AMBER),
        (0.99, GAP_RED),
        (0.0, GAP_RED),
        (None, GAP_UNKNOWN),
    ],
)
def test_gap_colour(time_gap_s: float | None, colour: tuple[int, int, int]) -> None:
    assert gap_colour(time_gap_s) == colour


@pytest.mark.parametrize("time_gap_s", [2.5, 1.5, 0.5, None])
def test_the_lead_box_is_drawn_in_its_gap_colour(time_gap_s: float | None) -> None:
    width, height = 1280, 720
    scene = blank(width, height)
    box = (500.0, 300.0, 700.0, 450.0)
    view = RoadView(
        t_s=0.0,
        speed_mps=15.0,
        tracks=[TrackView(3, "car", box), TrackView(4, "car", (900.0, 300.0, 1000.0, 380.0))],
        lead=LeadView(3, box, 20.0, time_gap_s, None),
    )
    draw_road(scene, view)
    colour = list(gap_colour(time_gap_s))
    assert scene[375, 500].tolist() == colour  # the middle of the left edge
    assert scene[375, 700].tolist() == colour  # ... and of the right one
    assert scene[450, 600].tolist() == colour  # the middle of the bottom edge
    assert scene[375, 600].tolist() == [GREY] * 3  # the inside is not filled
    assert scene[340, 900].tolist() != colour  # other tracks keep their own colour


# --- the banner -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), SIZES_WH)
def test_a_banner_adds_red_at_the_top_centre_only_when_given(width: int, height: int) -> None:
    top_centre = np.zeros((height, width), bool)
    top_centre[: round(0.2 * height), round(0.25 * width) : round(0.75 * width)] = True
    plain = blank(width, height)
    draw_road(plain, replace(full_view(width, height), lead=None))
    assert not reddish(plain).any()

    one = blank(width, height)
    draw_road(one, replace(full_view(width, height), lead=None, banners=("FOLLOWING TOO CLOSE  0.6 s",)))
    red = reddish(one)
    assert red[top_centre].sum() > 0.01 * top_centre.sum()
    assert not red[~top_centre].any()
    xs = np.nonzero(red)[1]
    assert (xs.min() + xs.max()) / 2 == pytest.approx(width / 2, abs=2)
    assert one[np.nonzero(red)].mean(axis=0) == pytest.approx(BANNER, abs=2)

    two = blank(width, height)
    banners = ("FOLLOWING TOO CLOSE  0.6 s", "FORWARD COLLISION WARNING  TTC 1.2 s")
    draw_road(two, replace(full_view(width, height), lead=None, banners=banners))
    rows_one, rows_two = np.nonzero(red.any(axis=1))[0], np.nonzero(reddish(two).any(axis=1))[0]
    assert rows_two.max() > rows_one.max()  # the second banner stacks below the first


# --- labels at the edges ----------------------------------------------------------------------------------------


def white(scene: Image) -> int:
    return int(np.all(scene >= 200, axis=2).sum())


@pytest.mark.parametrize(("width", "height"), SIZES_WH)
def test_labels_at_the_image_corners_draw_without_error(width: int, height: int) -> None:
    corner = (float(width - 80), float(height - 60), float(width), float(height))
    view = RoadView(
        t_s=3.0,
        speed_mps=None,
        tracks=[TrackView(1, "car", (0.0, 0.0, 80.0, 60.0)), TrackView(2, "motorcycle", corner)],
        lead=LeadView(2, corner, 8.0, 0.4, 1.5),
    )
    scene = blank(width, height)
    draw_road(scene, view)
    assert scene[height - 30, width - 80].tolist() == list(GAP_RED)  # the lead's left edge, in its colour


def assert_drawn_whole(segments: list[str], anchor: tuple[int, int]) -> None:
    """The label at `anchor` has as many text pixels as the same label in the middle of the frame, none of
    them on the border (text pushed out of the image loses pixels there)."""
    width, height = 1280, 720
    reference = blank(width, height, 0)
    draw_segments(reference, segments, (width // 2, height // 2), (60, 60, 60), 0.55)
    at_edge = blank(width, height, 0)
    draw_segments(at_edge, segments, anchor, (60, 60, 60), 0.55)
    assert white(reference) > 0
    assert white(at_edge) == white(reference)
    text = np.all(at_edge >= 200, axis=2)
    assert not (text[0].any() or text[-1].any() or text[:, 0].any() or text[:, -1].any())


@pytest.mark.parametrize(
    ("segments", "anchor"),
    [
        (["car #12"], (0, 0)),
        (["car #12"], (-40, 300)),
        (["8.0 m", "0.4 s", "TTC 1.5 s"], (1200, 719)),
        (["8.0 m", "0.4 s", "TTC 1.5 s"], (1279, 5)),
        (["truck #7"], (1250, 400)),
    ],
)
def test_a_label_at_the_image_edge_is_drawn_whole(segments: list[str], anchor: tuple[int, int]) -> None:
    assert_drawn_whole(segments, anchor)


@pytest.mark.parametrize("anchor_y", [-10, -60])
def test_a_label_of_a_box_reaching_above_the_image_is_drawn_whole(anchor_y: int) -> None:
    # detector boxes are not clipped to the frame: a truck close ahead has its top edge above row 0
    assert_drawn_whole(["truck #3"], (300, anchor_y))


# --- line widths scale with the frame ---------------------------------------------------------------------------


def lane_width_px(width: int, height: int) -> int:
    """Pixels across a vertical lane line drawn at the frame's centre, counted on its middle row."""
    scene = blank(width, height, 0)
    line = np.array([[width / 2, 0.3 * height], [width / 2, 0.9 * height]])
    draw_road(scene, RoadView(t_s=0.0, speed_mps=None, lanes=[line]))
    row = scene[round(0.6 * height)]
    if height >= 720:
        assert row[width // 2].tolist() == list(LANE_LINE)  # solid at its core
    return int((row.max(axis=1) > 128).sum())


def test_the_lane_line_is_thicker_at_1080p_than_at_480p() -> None:
    at_480, at_720, at_1080 = lane_width_px(854, 480), lane_width_px(1280, 720), lane_width_px(1920, 1080)
    assert at_480 >= 1
    assert at_480 <= at_720 <= at_1080
    assert at_1080 >= 2 * at_480


# --- texts ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lead", "segments"),
    [
        (LeadView(7, (0, 0, 1, 1), 23.456, None, None), ["23.5 m"]),
        (LeadView(7, (0, 0, 1, 1), 23.456, 1.24, None), ["23.5 m", "1.2 s"]),
        (LeadView(7, (0, 0, 1, 1), 23.456, 1.26, 3.04), ["23.5 m", "1.3 s", "TTC 3.0 s"]),
        (LeadView(7, (0, 0, 1, 1), None, 1.5, None), ["1.5 s"]),
        (LeadView(7, (0, 0, 1, 1), 5.0, 0.0, 0.0), ["5.0 m", "0.0 s", "TTC 0.0 s"]),
        (LeadView(7, (0, 0, 1, 1), None, None, None), ["#7"]),
    ],
)
def test_lead_segments(lead: LeadView, segments: list[str]) -> None:
    assert lead_segments(lead) == segments


@pytest.mark.parametrize(
    ("t_s", "text"),
    [
        (0.0, "00:00.00"),
        (-0.5, "00:00.00"),
        (9.87, "00:09.87"),
        (61.5, "01:01.50"),
        (3599.99, "59:59.99"),
        (3600.0, "60:00.00"),
        (59.999, "01:00.00"),  # rounds up to the next minute, never "00:60.00"
        (8991 * 1001 / 30000, "05:00.00"),  # frame 8991 of a 29.97 fps video, 0.3 ms before 5 minutes
    ],
)
def test_format_clock(t_s: float, text: str) -> None:
    assert format_clock(t_s) == text
