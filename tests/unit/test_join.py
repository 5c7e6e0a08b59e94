"""Joining segments' results: track ids across a boundary, events across a boundary, per-frame JSON."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framequeue.pipelines.join import (
    IdAllocator,
    TrackBox,
    concat_frames_json,
    iou,
    map_tracks,
    merge_events,
    read_tail,
    remap_ids,
)
from framequeue.pipelines.outputs import JsonStream
from framequeue.pipelines.road.events import COLLISION, FrameValues, RoadEvents
from framequeue.tracking import ByteTracker


def boxes(*items: tuple[int, tuple[float, float, float, float]], label: str | None = None) -> list[TrackBox]:
    return [TrackBox(tid, box, label) for tid, box in items]


A = (0.0, 0.0, 10.0, 10.0)
A_SHIFTED = (1.0, 0.0, 11.0, 10.0)
B = (50.0, 50.0, 70.0, 70.0)
C = (100.0, 0.0, 120.0, 20.0)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(A, A, 1.0), (A, B, 0.0), (A, A_SHIFTED, 90 / 110), (A, (10.0, 0.0, 20.0, 10.0), 0.0), (A, (0, 0, 0, 0), 0.0)],
)
def test_iou(a: tuple[float, ...], b: tuple[float, ...], expected: float) -> None:
    assert iou(a, b) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("prev", "lead", "next_ids", "expected", "next_fresh"),
    [
        # the same two objects, ids swapped in the next segment
        ({10: boxes((7, A), (8, B))}, {10: boxes((1, A_SHIFTED), (2, B))}, (), {1: 7, 2: 8}, 9),
        # an object only the next segment sees gets a fresh id; one seen later (next_ids) too
        ({10: boxes((7, A))}, {10: boxes((1, A), (2, C))}, (3,), {1: 7, 2: 9, 3: 10}, 11),
        # overlap below min_iou: no match
        ({10: boxes((7, A))}, {10: boxes((1, (6.0, 0.0, 16.0, 10.0)))}, (), {1: 9}, 10),
        # votes decide: 1 overlaps 7 on two frames and 8 on one
        (
            {10: boxes((7, A), (8, B)), 11: boxes((7, A), (8, B)), 12: boxes((7, B), (8, A))},
            {10: boxes((1, A)), 11: boxes((1, A)), 12: boxes((1, A))},
            (),
            {1: 7},
            9,
        ),
        # frames only one side has do not vote
        ({10: boxes((7, A))}, {11: boxes((1, A))}, (), {1: 9}, 10),
        # no lead-in at all (the first boundary of a giant GOP): every id is fresh
        ({}, {}, (1, 2), {1: 9, 2: 10}, 11),
    ],
)
def test_map_tracks(
    prev: dict[int, list[TrackBox]],
    lead: dict[int, list[TrackBox]],
    next_ids: tuple[int, ...],
    expected: dict[int, int],
    next_fresh: int,
) -> None:
    allocator = IdAllocator(9)
    assert map_tracks(prev, lead, next_ids=next_ids, allocator=allocator) == expected
    assert allocator.next_id == next_fresh


def test_map_tracks_one_to_one_and_labels() -> None:
    # two next ids on the same box: only the better voted one takes 7
    prev = {f: boxes((7, A)) for f in range(3)}
    lead = {0: boxes((1, A)), 1: boxes((1, A)), 2: boxes((2, A))}
    assert map_tracks(prev, lead, allocator=IdAllocator(20)) == {1: 7, 2: 20}
    # a car never continues a person
    prev_l = {0: [TrackBox(7, A, "person")]}
    lead_l = {0: [TrackBox(1, A, "car")]}
    assert map_tracks(prev_l, lead_l) == {1: 8}


def test_ids_never_collide_across_three_segments() -> None:
    allocator = IdAllocator.after([1, 2, 3])
    first = map_tracks({0: boxes((1, A), (2, B))}, {0: boxes((1, B), (2, C))}, next_ids=(3,), allocator=allocator)
    assert first == {1: 2, 2: 4, 3: 5}
    second = map_tracks({5: boxes((4, C))}, {5: boxes((1, C))}, next_ids=(2,), allocator=allocator)
    assert second == {1: 4, 2: 6}


def ev(kind: str, start: float, end: float, **numbers: Any) -> dict[str, Any]:
    return {"type": kind, "start_s": start, "end_s": end, "duration_s": round(end - start, 3), **numbers}


FOLLOW = "following_too_close"
LONG = "distraction_long"


@pytest.mark.parametrize(
    ("events", "boundaries", "expected"),
    [
        # one event cut by the boundary at 60 s: closed there by segment 0, picked up in the lead-in by 1
        (
            [
                [ev(FOLLOW, 55.0, 60.0, min_time_gap_s=0.8, mean_time_gap_s=1.0, lead_track_ids=[3])],
                [ev(FOLLOW, 59.5, 64.0, min_time_gap_s=0.6, mean_time_gap_s=0.7, lead_track_ids=[3, 9])],
            ],
            [60.0],
            [
                ev(
                    FOLLOW,
                    55.0,
                    64.0,
                    min_time_gap_s=0.6,
                    mean_time_gap_s=round((1.0 * 4.5 + 0.7 * 4.5) / 9.0, 3),
                    lead_track_ids=[3, 9],
                )
            ],
        ),
        # meeting exactly at the boundary; max_* takes the max, *_s totals add (no overlap)
        (
            [
                [ev(LONG, 58.0, 60.0, track_id=4, max_abs_yaw_deg=40.0, off_road_s=2.0)],
                [ev(LONG, 60.0, 61.5, track_id=4, max_abs_yaw_deg=52.5, off_road_s=1.5)],
            ],
            [60.0],
            [ev(LONG, 58.0, 61.5, track_id=4, max_abs_yaw_deg=52.5, off_road_s=3.5)],
        ),
        # overlapping totals count the overlap once
        (
            [[ev(LONG, 58.0, 60.0, track_id=4, off_road_s=2.0)], [ev(LONG, 59.0, 62.0, track_id=4, off_road_s=3.0)]],
            [60.0],
            [ev(LONG, 58.0, 62.0, track_id=4, off_road_s=4.0)],
        ),
        # different track: two events
        (
            [[ev(LONG, 58.0, 60.0, track_id=4)], [ev(LONG, 60.0, 62.0, track_id=5)]],
            [60.0],
            [ev(LONG, 58.0, 60.0, track_id=4), ev(LONG, 60.0, 62.0, track_id=5)],
        ),
        # different type: two events
        (
            [[ev(FOLLOW, 58.0, 60.0)], [ev("forward_collision_warning", 60.0, 61.0)]],
            [60.0],
            [ev(FOLLOW, 58.0, 60.0), ev("forward_collision_warning", 60.0, 61.0)],
        ),
        # the first ended well before the boundary: two events
        (
            [[ev(FOLLOW, 50.0, 55.0)], [ev(FOLLOW, 60.0, 62.0)]],
            [60.0],
            [ev(FOLLOW, 50.0, 55.0), ev(FOLLOW, 60.0, 62.0)],
        ),
        # the second starts well after the boundary: two events
        (
            [[ev(FOLLOW, 55.0, 60.0)], [ev(FOLLOW, 61.0, 62.0)]],
            [60.0],
            [ev(FOLLOW, 55.0, 60.0), ev(FOLLOW, 61.0, 62.0)],
        ),
        # within tolerance of the boundary
        (
            [[ev(FOLLOW, 55.0, 59.95)], [ev(FOLLOW, 60.05, 62.0)]],
            [60.0],
            [ev(FOLLOW, 55.0, 62.0)],
        ),
        # one event across three segments (all of segment 1)
        (
            [[ev(FOLLOW, 50.0, 60.0)], [ev(FOLLOW, 59.0, 120.0)], [ev(FOLLOW, 119.0, 130.0)]],
            [60.0, 120.0],
            [ev(FOLLOW, 50.0, 130.0)],
        ),
        # an event all in segment 1's lead-in is segment 0's: dropped
        (
            [[ev(FOLLOW, 58.0, 59.2, min_time_gap_s=0.5)], [ev(FOLLOW, 58.1, 59.2, min_time_gap_s=0.7)]],
            [60.0],
            [ev(FOLLOW, 58.0, 59.2, min_time_gap_s=0.5)],
        ),
        # events inside segments stay as they are, by start time
        (
            [[ev(FOLLOW, 10.0, 12.0)], [ev(FOLLOW, 70.0, 72.0)], []],
            [60.0, 120.0],
            [ev(FOLLOW, 10.0, 12.0), ev(FOLLOW, 70.0, 72.0)],
        ),
        ([], [], []),
    ],
)
def test_merge_events(
    events: list[list[dict[str, Any]]], boundaries: list[float], expected: list[dict[str, Any]]
) -> None:
    assert merge_events(events, boundaries, tolerance_s=0.1) == expected


def test_merge_events_keeps_the_longer_parts_summary_id() -> None:
    a = ev(FOLLOW, 50.0, 60.0, lead_track_id=3, min_ttc_s=None)
    b = ev(FOLLOW, 60.0, 61.0, lead_track_id=9, min_ttc_s=2.5)
    (merged,) = merge_events([[a], [b]], [60.0])
    assert merged["lead_track_id"] == 3
    assert merged["min_ttc_s"] == 2.5
    with pytest.raises(ValueError, match="boundaries"):
        merge_events([[a], [b]], [])


def test_remap_ids_covers_every_pipelines_shape() -> None:
    road = {
        "index": 5,
        "tracks": [{"id": 1, "class": "car", "box_xyxy": [0, 0, 1, 1]}, {"id": 2, "class": "car"}],
        "lead": {"track_id": 2, "distance_m": 12.0},
    }
    driver = {"index": 5, "driver_track_id": 1, "faces": [{"track_id": 1, "score": 0.9}]}
    summary = {"tracks": 2, "lead_track_ids": [2, 1]}
    m = {1: 10, 2: 20}
    assert remap_ids(road, m)["tracks"][1]["id"] == 20
    assert remap_ids(road, m)["lead"]["track_id"] == 20
    assert remap_ids(road, m)["tracks"][0]["box_xyxy"] == [0, 0, 1, 1]
    assert remap_ids(driver, m) == {"index": 5, "driver_track_id": 10, "faces": [{"track_id": 10, "score": 0.9}]}
    assert remap_ids(summary, m) == {"tracks": 2, "lead_track_ids": [10, 20]}
    assert remap_ids({"lead": None, "driver_track_id": None}, m) == {"lead": None, "driver_track_id": None}
    with pytest.raises(ValueError, match="track id 3"):
        remap_ids({"track_id": 3}, m)


def write_part(path: Path, head: dict[str, Any], records: list[dict[str, Any]], tail: dict[str, Any]) -> Path:
    stream = JsonStream(path, head)
    for record in records:
        stream.write(record)
    stream.finish(tail)
    return path


def road_record(index: int, t_s: float, ids: list[int]) -> dict[str, Any]:
    return {"index": index, "t_s": t_s, "tracks": [{"id": i} for i in ids], "lead": {"track_id": ids[0]}}


def test_concat_frames_json_road(tmp_path: Path) -> None:
    head = {"video": {"fps": 10}, "pipeline": "road"}
    p0 = write_part(tmp_path / "0.json", head, [road_record(i, i / 10, [1, 2]) for i in range(3)], {"events": []})
    p1 = write_part(tmp_path / "1.json", head, [road_record(i, i / 10, [1, 3]) for i in range(2)], {"x": 1})
    dst = tmp_path / "all.json"
    n = concat_frames_json([p0, p1], dst, [0, 3], [0.0, 0.3], [None, {1: 2, 3: 4}], tail={"events": ["e"]})
    assert n == 5
    doc = json.loads(dst.read_text())
    assert doc["video"] == {"fps": 10} and doc["pipeline"] == "road" and doc["events"] == ["e"]
    assert [r["index"] for r in doc["frames"]] == [0, 1, 2, 3, 4]
    assert [r["t_s"] for r in doc["frames"]] == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert [[t["id"] for t in r["tracks"]] for r in doc["frames"]] == [[1, 2]] * 3 + [[2, 4]] * 2
    assert doc["frames"][4]["lead"] == {"track_id": 2}
    assert read_tail(p0) == {"events": []} and read_tail(p1) == {"x": 1} and read_tail(dst) == {"events": ["e"]}


def test_concat_frames_json_detect_and_empty_parts(tmp_path: Path) -> None:
    rec = [{"frame": i, "time_s": i * 0.04, "detections": []} for i in range(2)]
    p0 = write_part(tmp_path / "0.json", {"model": "m"}, rec, {})
    empty = write_part(tmp_path / "e.json", {"model": "m"}, [], {})
    p2 = write_part(tmp_path / "2.json", {"model": "m"}, rec, {})
    dst = tmp_path / "all.json"
    assert concat_frames_json([p0, empty, p2], dst, [0, 2, 2], [0.0, 0.08, 0.08], [None] * 3) == 4
    doc = json.loads(dst.read_text())
    assert doc == {
        "model": "m",
        "frames": [{**r, "frame": k, "time_s": round(k * 0.04, 6)} for k, r in enumerate(rec * 2)],
    }
    assert read_tail(empty) == {}


def test_concat_frames_json_refuses_overlap_and_broken_parts(tmp_path: Path) -> None:
    rec = [{"index": i, "t_s": i / 10, "tracks": []} for i in range(3)]
    p = write_part(tmp_path / "0.json", {}, rec, {})
    dst = tmp_path / "all.json"
    # a part that still holds lead-in frames would repeat global frames
    with pytest.raises(ValueError, match="global frame 2 does not follow frame 2"):
        concat_frames_json([p, p], dst, [0, 2], [0.0, 0.2], [None, None])
    assert not dst.exists()
    broken = tmp_path / "broken.json"
    broken.write_text(p.read_text()[:-10])
    with pytest.raises(ValueError, match=r"broken\.json: a damaged or incomplete record"):
        concat_frames_json([p, broken], dst, [0, 3], [0.0, 0.3], [None, None])
    broken.write_text(p.read_text()[: p.read_text().rindex("\n]")] + "\n")
    with pytest.raises(ValueError, match=r"broken\.json ends inside its list"):
        concat_frames_json([p, broken], dst, [0, 3], [0.0, 0.3], [None, None])
    assert not dst.exists()
    with pytest.raises(ValueError, match="track id 1"):
        concat_frames_json(
            [write_part(tmp_path / "t.json", {}, [{"index": 0, "track_id": 1}], {})], dst, [0], [0.0], [{}]
        )
    with pytest.raises(ValueError, match="one entry per part"):
        concat_frames_json([p], dst, [0, 1], [0.0], [None])


def test_concat_frames_json_streams(tmp_path: Path) -> None:
    # 2 x 20,000 records (~2.6 MB of JSON): the join holds one record at a time, not the files
    parts = []
    for k in range(2):
        records = [road_record(i, i / 30, [1, 2, 3]) for i in range(20_000)]
        parts.append(write_part(tmp_path / f"{k}.json", {"v": 1}, records, {}))
    size = sum(p.stat().st_size for p in parts)
    tracemalloc.start()
    try:
        n = concat_frames_json(
            parts, tmp_path / "all.json", [0, 20_000], [0.0, 20_000 / 30], [None, {1: 1, 2: 2, 3: 4}]
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 40_000
    assert peak < size / 10
    assert json.loads((tmp_path / "all.json").read_text())["frames"][-1]["index"] == 39_999


def scene(frame: int) -> list[tuple[float, float, float, float]]:
    """Boxes of one frame: A crosses the whole video, B leaves mid-segment, C enters before a boundary, D
    enters inside the last segment's lead-in, E only in the last segment."""
    boxes = [(5.0 + 2 * frame, 20.0, 45.0 + 2 * frame, 60.0)]
    if 50 <= frame < 180:
        boxes.append((600.0 - 3 * frame, 100.0, 650.0 - 3 * frame, 150.0))
    if frame >= 150:
        boxes.append((100.0, 300.0 + (frame - 150), 140.0, 340.0 + (frame - 150)))
    if frame >= 195:
        boxes.append((700.0, 400.0 - (frame - 195), 760.0, 460.0 - (frame - 195)))
    if frame >= 240:
        boxes.append((300.0 + frame, 500.0, 340.0 + frame, 540.0))
    return boxes


def track(frames: range, period_s: float = 0.1) -> dict[int, list[TrackBox]]:
    """A fresh ByteTracker over `frames`: each frame's confirmed tracks."""
    tracker = ByteTracker()
    out = {}
    for f in frames:
        boxes = np.array(scene(f), np.float32)
        tracks = tracker.update(f * period_s, boxes, np.full(len(boxes), 0.9), np.zeros(len(boxes), int))
        out[f] = [TrackBox(t.track_id, [float(v) for v in t.box_xyxy]) for t in tracks]
    return out


def test_split_tracking_ids_equal_the_unsplit_ones_up_to_naming() -> None:
    # three segments of 100 frames with 10-frame lead-ins, each tracked by its own tracker, as segment jobs do
    n, seg, lead = 300, 100, 10
    whole = track(range(n))
    allocator: IdAllocator | None = None
    stitched: dict[int, list[TrackBox]] = {}
    for k in range(n // seg):
        start = k * seg
        own = track(range(max(0, start - lead), start + seg))
        ids = {b.track_id for boxes in own.values() for b in boxes}
        if allocator is None:
            allocator, mapping = IdAllocator.after(ids), {i: i for i in ids}
        else:
            lead_frames = range(start - lead, start)
            mapping = map_tracks(
                {f: stitched[f] for f in lead_frames},
                {f: own[f] for f in lead_frames},
                next_ids=ids,
                allocator=allocator,
            )
        for f in range(start, start + seg):
            stitched[f] = [TrackBox(mapping[b.track_id], b.box_xyxy) for b in own[f]]
    # the same objects on every frame, and one stitched id for each unsplit id across the whole video
    pairs: set[tuple[int, int]] = set()
    for f in range(n):
        assert len(stitched[f]) == len(whole[f]), f"frame {f}"
        for w in whole[f]:
            (s,) = [s for s in stitched[f] if iou(s.box_xyxy, w.box_xyxy) > 0.5]
            pairs.add((w.track_id, s.track_id))
    assert len({w for w, _ in pairs}) == len({s for _, s in pairs}) == len(pairs) == 5


def road_values(t_s: float) -> FrameValues:
    """A following event 2-4 s (inside segment 0), 8-13 s (across the 10 s boundary), 19.05-19.6 s (in the
    20 s boundary's lead-in: segment 2 sees it whole too), 20.8-21.6 s; TTC low 14-16 s and 28.5 s to the end."""
    close = any(a <= t_s < b for a, b in ((2.0, 4.0), (8.0, 13.0), (19.05, 19.6), (20.8, 21.6)))
    lead = 1 if t_s < 20.0 else 2
    ttc = 1.5 if (14.0 <= t_s < 16.0 or t_s >= 28.5) else 9.0
    return FrameValues(t_s, lead, 10.0 + t_s, 0.5 if close else 3.0, ttc, 20.0)


def run_road_events(frames: range, period_s: float) -> list[dict[str, Any]]:
    rules = RoadEvents(
        {"max_time_gap_s": 1.0, "min_speed_mps": 5.0, "min_duration_s": 0.5},
        {"max_ttc_s": 2.0, "min_duration_s": 0.5},
        period_s,
    )
    for f in frames:
        rules.update(road_values(round(f * period_s, 6)))
    return rules.finish(round(frames[-1] * period_s + period_s, 6))


def test_split_road_events_merge_to_the_unsplit_ones() -> None:
    # 30 s at 10 fps in three 10 s segments with 1 s lead-ins, each with its own RoadEvents, as segment jobs do
    period_s, seg, lead = 0.1, 100, 10
    whole = run_road_events(range(300), period_s)
    per_segment = [run_road_events(range(max(0, k * seg - lead), (k + 1) * seg), period_s) for k in range(3)]
    # segment 2 saw the lead-in event whole: it is dropped, not doubled
    assert (FOLLOW, 19.1, 19.6) in [(e["type"], e["start_s"], e["end_s"]) for e in per_segment[2]]
    merged = merge_events(per_segment, [10.0, 20.0], tolerance_s=period_s)
    assert merged == whole
    assert [(e["type"], e["start_s"], e["end_s"]) for e in merged] == [
        (FOLLOW, 2.0, 4.0),
        (FOLLOW, 8.0, 13.0),
        (COLLISION, 14.0, 16.0),
        (FOLLOW, 19.1, 19.6),
        (FOLLOW, 20.8, 21.6),
        (COLLISION, 28.5, 30.0),
    ]
