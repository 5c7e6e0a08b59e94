"""The driver overlay on synthetic frames: the colours of the face boxes, the head box, the window bar and the
banners, at the smallest and largest frame sizes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from framequeue.media.draw import BANNER
from framequeue.pipelines.driver.overlay import (
    BAR_BACK,
    BAR_FILL,
    HEAD_BOX,
    OFF_ROAD,
    ON_ROAD,
    OTHER_FACE,
    DriverView,
    FaceView,
    draw_driver,
)

GREY = 100
SIZES_WH = [(480, 270), (1920, 1080)]

Image = npt.NDArray[np.uint8]
Colour = tuple[int, int, int]


def blank(width: int, height: int) -> Image:
    return np.full((height, width, 3), GREY, np.uint8)


def is_colour(scene: Image, colour: Colour) -> npt.NDArray[np.bool_]:
    mask: npt.NDArray[np.bool_] = np.all(scene == np.array(colour, np.uint8), axis=2)
    return mask


def mostly(scene: Image, colour: Colour) -> npt.NDArray[np.bool_]:
    """Pixels at least 60 % `colour` over the grey background (anti-aliased 1 px lines never reach 100 %)."""
    target = np.array(colour, np.int32)
    tolerance = 0.4 * np.abs(target - GREY) + 1
    mask: npt.NDArray[np.bool_] = np.all(np.abs(scene.astype(np.int32) - target) <= tolerance, axis=2)
    return mask


def driver_box(width: int, height: int) -> tuple[float, float, float, float]:
    return (0.3 * width, 0.3 * height, 0.55 * width, 0.75 * height)


def head_box(width: int, height: int) -> npt.NDArray[np.float64]:
    """A rear square and a smaller front square in the frame's right half, clear of the face boxes."""
    cx, cy, side = 0.8 * width, 0.7 * height, 0.1 * height
    rear = [(cx - side, cy - side), (cx + side, cy - side), (cx + side, cy + side), (cx - side, cy + side)]
    front = [(x + 0.3 * (cx - x), y + 0.3 * (cy - y)) for x, y in rear]
    return np.array(rear + front, np.float64)


def driver(width: int, height: int, **kw: object) -> FaceView:
    return FaceView(1, driver_box(width, height), True, **kw)  # type: ignore[arg-type]


def full_view(width: int, height: int) -> DriverView:
    axes = np.array([[0.42 * width, 0.5 * height], [0.5 * width, 0.5 * height], [0.42 * width, 0.6 * height],
                     [0.45 * width, 0.45 * height]], np.float64)
    return DriverView(
        t_s=12.5,
        faces=[
            driver(width, height, angles_deg=(35.0, -4.0, 2.0), head_box_px=head_box(width, height), axes_px=axes,
                   off_road=True),
            FaceView(2, (0.05 * width, 0.1 * height, 0.15 * width, 0.25 * height), False),
        ],
        glance_s=2.4,
        window_off_s=7.5,
        banners=("DISTRACTED: EYES OFF THE ROAD",),
    )


@pytest.mark.parametrize(("width", "height"), SIZES_WH)
def test_draws_every_element_at_both_sizes(width: int, height: int) -> None:
    scene = blank(width, height)
    out = draw_driver(scene, full_view(width, height))
    assert out is scene and out.shape == (height, width, 3) and out.dtype == np.uint8
    for colour in (OFF_ROAD, OTHER_FACE, HEAD_BOX, BAR_BACK, BAR_FILL, BANNER):
        assert is_colour(out, colour).any(), colour


@pytest.mark.parametrize(("width", "height"), SIZES_WH)
@pytest.mark.parametrize(("off_road", "colour"), [(True, OFF_ROAD), (False, ON_ROAD), (None, ON_ROAD)])
def test_the_driver_box_is_coloured_by_off_road(width: int, height: int, off_road: bool | None, colour: Colour) -> None:
    scene = draw_driver(blank(width, height), DriverView(0.0, [driver(width, height, off_road=off_road)]))
    x1, y1, _, y2 = (round(v) for v in driver_box(width, height))
    assert tuple(scene[(y1 + y2) // 2, x1]) == colour


def test_another_face_is_grey_whatever_its_off_road() -> None:
    width, height = 1920, 1080
    box = (0.7 * width, 0.3 * height, 0.8 * width, 0.5 * height)
    view = DriverView(0.0, [FaceView(2, box, False, off_road=True)])
    scene = draw_driver(blank(width, height), view)
    assert tuple(scene[round(0.4 * height), round(box[0])]) == OTHER_FACE
    assert not is_colour(scene, OFF_ROAD).any() and not is_colour(scene, ON_ROAD).any()


@pytest.mark.parametrize(("width", "height"), SIZES_WH)
def test_the_head_box_is_drawn_through_its_points(width: int, height: int) -> None:
    corners = head_box(width, height)
    scene = draw_driver(blank(width, height), DriverView(0.0, [driver(width, height, head_box_px=corners)]))
    hits = mostly(scene, HEAD_BOX)
    rear, front = corners[:4], corners[4:]
    # the middles of the squares' edges and of the edges joining them
    for a, b in [*zip(rear, np.roll(rear, -1, axis=0), strict=True), *zip(front, np.roll(front, -1, axis=0),
                 strict=True), *zip(rear, front, strict=True)]:
        x, y = (round(v) for v in (a + b) / 2)
        assert hits[y - 1 : y + 2, x - 1 : x + 2].any(), (x, y)
    # and nowhere far from them
    ys, xs = np.nonzero(hits)
    assert xs.min() >= corners[:, 0].min() - 3 and xs.max() <= corners[:, 0].max() + 3
    assert ys.min() >= corners[:, 1].min() - 3 and ys.max() <= corners[:, 1].max() + 3


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_head_box_with_non_finite_points_is_skipped(bad: float) -> None:
    width, height = 1920, 1080
    corners = head_box(width, height)
    corners[5, 1] = bad
    axes = np.array([[100.0, 100.0], [bad, 100.0], [100.0, 200.0], [150.0, 150.0]])
    with_box = draw_driver(blank(width, height), DriverView(0.0, [driver(width, height, head_box_px=corners,
                                                                         axes_px=axes)]))
    without = draw_driver(blank(width, height), DriverView(0.0, [driver(width, height)]))
    np.testing.assert_array_equal(with_box, without)


def bar_row(width: int, height: int) -> int:
    """A row through the middle of the window bar: the bar's background, bottom left, with nothing counted."""
    scene = draw_driver(blank(width, height), DriverView(0.0))
    counts = is_colour(scene[:, : width // 3], BAR_BACK).sum(axis=1)
    rows = np.nonzero(counts == counts.max())[0]  # the filled rectangle's rows (anti-aliased text has a few)
    assert counts.max() > width // 10 and rows.min() > height // 2
    return int((rows.min() + rows.max()) // 2)


@pytest.mark.parametrize(("width", "height"), SIZES_WH)
def test_the_window_bar_grows_and_turns_red_at_the_limit(width: int, height: int) -> None:
    row = bar_row(width, height)

    def filled(window_off_s: float) -> tuple[int, int]:
        scene = draw_driver(blank(width, height), DriverView(0.0, window_off_s=window_off_s))
        line = scene[row : row + 1]
        return int(is_colour(line, BAR_FILL).sum()), int(is_colour(line, OFF_ROAD).sum())

    assert filled(0.0) == (0, 0)
    amber = [filled(s)[0] for s in (2.0, 4.0, 8.0, 9.9)]
    assert all(n > 0 for n in amber) and amber == sorted(amber) and len(set(amber)) == len(amber)
    assert amber[1] == pytest.approx(2 * amber[0], abs=2)  # proportional to the counted seconds
    assert filled(9.9)[1] == 0
    at_limit_fill, at_limit_red = filled(10.0)
    assert at_limit_fill == 0 and at_limit_red >= amber[-1]
    over_fill, over_red = filled(14.0)
    assert over_fill == 0 and over_red > at_limit_red
    # full at 1.5 x the limit, and no further
    assert filled(15.0)[1] == filled(40.0)[1] > over_red


@pytest.mark.parametrize(("width", "height"), SIZES_WH)
def test_the_window_bar_scales_with_its_limit(width: int, height: int) -> None:
    row = bar_row(width, height)
    scenes = [draw_driver(blank(width, height), DriverView(0.0, window_off_s=4.0, window_limit_s=limit))
              for limit in (5.0, 10.0)]
    fills = [int(is_colour(s[row : row + 1], BAR_FILL).sum()) for s in scenes]
    assert fills[0] == pytest.approx(2 * fills[1], abs=2)


@pytest.mark.parametrize(("width", "height"), SIZES_WH)
def test_banners_appear_only_when_given(width: int, height: int) -> None:
    top = slice(0, height // 4)
    bare = draw_driver(blank(width, height), DriverView(0.0, [driver(width, height)]))
    assert not is_colour(bare[top], BANNER).any()
    one = draw_driver(blank(width, height), DriverView(0.0, [driver(width, height)], banners=["DRIVER NOT VISIBLE"]))
    assert is_colour(one[top], BANNER).any()
    two = draw_driver(
        blank(width, height),
        replace(DriverView(0.0, [driver(width, height)]), banners=["DRIVER NOT VISIBLE", "DISTRACTED"]),
    )
    rows_one = np.nonzero(is_colour(one, BANNER).any(axis=1))[0]
    rows_two = np.nonzero(is_colour(two, BANNER).any(axis=1))[0]
    assert rows_two.max() > rows_one.max()  # the second banner stacks below the first


def test_the_glance_timer_shows_only_during_a_glance() -> None:
    width, height = 1920, 1080
    _, _, _, y2 = driver_box(width, height)
    below = slice(round(y2) + 8, round(0.9 * height))

    def red_below(glance_s: float) -> bool:
        scene = draw_driver(blank(width, height), DriverView(0.0, [driver(width, height, off_road=True)],
                                                             glance_s=glance_s))
        return bool(is_colour(scene[below], OFF_ROAD).any())

    assert not red_below(0.0)
    assert red_below(1.5)
