"""The road pipeline's stitch (framequeue.pipelines.road.join) on hand-made segment files: track ids mapped
across the boundary by the lead-in's boxes, the records and events rewritten through the map, an event that
crosses the boundary reported once, and the summary and timeline made from the joined records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from framequeue.pipelines.join import read_tail
from framequeue.pipelines.outputs import JsonStream
from framequeue.pipelines.road.events import COLLISION, FOLLOWING
from framequeue.pipelines.road.join import RoadPart, join_road, write_overlap
from framequeue.pipelines.road.summary import RoadTally

RULES = {
    "following": {"profile": "two_second_rule", "max_time_gap_s": 2.0, "min_duration_s": 0.2, "min_speed_mps": 5.0},
    "collision": {"max_ttc_s": 2.7},
}
#: car A (the lead) and car B, each where it is on every frame
BOX_A = [100.0, 100.0, 160.0, 140.0]
BOX_B = [300.0, 100.0, 340.0, 130.0]
BOX_D = [20.0, 100.0, 60.0, 130.0]


def track(track_id: int, box: list[float]) -> dict[str, Any]:
    return {"id": track_id, "class": "car", "score": 0.9, "box_xyxy": box}


def record(index: int, tracks: list[dict[str, Any]], lead_id: int | None) -> dict[str, Any]:
    lead = None if lead_id is None else {"track_id": lead_id, "distance_m": 20.0, "time_gap_s": 1.0, "ttc_s": None}
    return {"index": index, "t_s": index / 10, "inferred": True, "tracks": tracks,
            "lanes": [{"points": [[0, 0]], "score": 0.9}] * 2, "ego_lane": {"source": "lanes"}, "lead": lead,
            "speed_mps": 20.0}


def event(start_s: float, end_s: float, lead_id: int) -> dict[str, Any]:
    return {"type": FOLLOWING, "start_s": start_s, "end_s": end_s, "duration_s": round(end_s - start_s, 3),
            "min_time_gap_s": 1.0, "lead_track_id": lead_id, "lead_track_ids": [lead_id]}


def write_segment(folder: Path, records: list[dict[str, Any]], lead_in: list[dict[str, Any]],
                  events: list[dict[str, Any]], start_s: float) -> RoadPart:
    folder.mkdir()
    tally = RoadTally()
    stream = JsonStream(folder / "road.json", {"pipeline": "road", "rules": RULES})
    for r in records:
        tally.add(r)
        stream.write(r)
    video = {"width": 640, "height": 360, "fps": 10.0, "frames": len(records), "duration_s": 0.4}
    stream.finish({"events": events, "summary": tally.summary(events), "video": video})
    write_overlap(folder / "overlap.json", lead_in, sorted(tally.track_ids))
    return RoadPart(folder / "road.json", folder / "overlap.json", events, start_s)


def test_two_segments_join_as_one_run(tmp_path: Path) -> None:
    # segment 0 (frames 0-3): B is 1 (gone after frame 1), A is 2; following A from 0.0 s to its end
    seg0 = write_segment(
        tmp_path / "0",
        [record(i, [track(1, BOX_B), track(2, BOX_A)] if i < 2 else [track(2, BOX_A)], 2) for i in range(4)],
        [], [event(0.0, 0.4, 2)], 0.0)
    # segment 1 (frames 4-7, lead-in 2-3): A is 1 by itself, D is new (2) from frame 6; an event of its lead-in
    # alone (segment 0 reported those frames) and the following one that started in the lead-in
    lead_in = [{"index": i, "tracks": [track(1, BOX_A)]} for i in (2, 3)]
    seg1 = write_segment(
        tmp_path / "1",
        [record(i, [track(1, BOX_A)] + ([track(2, BOX_D)] if i >= 6 else []), 1) for i in range(4, 8)],
        lead_in, [event(0.2, 0.25, 1), event(0.2, 0.8, 1)], 0.4)

    road, timeline = tmp_path / "road.json", tmp_path / "timeline.png"
    events = join_road([seg0, seg1], road, timeline, frames_total=8)

    doc = json.loads(road.read_text())
    assert [r["index"] for r in doc["frames"]] == list(range(8))
    ids = [sorted(t["id"] for t in r["tracks"]) for r in doc["frames"]]
    # A keeps 2 across the boundary; D gets an id no other vehicle had
    assert ids == [[1, 2], [1, 2], [2], [2], [2], [2], [2, 3], [2, 3]]
    assert {r["lead"]["track_id"] for r in doc["frames"]} == {2}
    assert events == doc["events"] == [
        {"type": FOLLOWING, "start_s": 0.0, "end_s": 0.8, "duration_s": 0.8, "min_time_gap_s": 1.0,
         "lead_track_id": 2, "lead_track_ids": [2]}
    ]
    assert doc["summary"] == {
        "frames": 8, "share_two_lanes": 1.0, "share_ego_lane": 1.0, "share_lead": 1.0, "share_time_gap": 1.0,
        "tracks": 3, "events": {FOLLOWING: 1, COLLISION: 0},
    }
    assert doc["video"]["frames"] == 8 and doc["video"]["duration_s"] == 0.8
    assert doc["rules"] == RULES and read_tail(road)["summary"]["tracks"] == 3
    assert timeline.read_bytes().startswith(b"\x89PNG")
