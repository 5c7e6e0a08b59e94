"""The road pipeline's side of a split job (framequeue.worker.split): what a segment writes beside its
outputs (`overlap.json`: its lead-in's tracked boxes and the track ids of its own frames), and how the stitch
joins the segments' `road.json` files into the one an unsplit run writes.

Segment k+1's ids are mapped onto segment k's (already global) ids by `map_tracks` on the lead-in frames both
ran, with one IdAllocator for the whole stitch; its records and events are rewritten through that map; events
crossing a boundary are merged once (`merge_events`); the summary and the timeline are made from the joined
records by the same RoadTally an unsplit run uses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framequeue.pipelines.join import (
    IdAllocator,
    TrackBox,
    concat_frames_json,
    map_tracks,
    merge_events,
    read_json_stream,
    read_tail,
    remap_ids,
)
from framequeue.pipelines.road.summary import RoadTally


def write_overlap(path: Path, lead_in: Sequence[Mapping[str, Any]], track_ids: Sequence[int]) -> None:
    """A segment's `overlap.json`: `lead_in` records ({index, tracks}) and its own frames' track ids."""
    path.write_text(json.dumps({"lead_in": list(lead_in), "track_ids": list(track_ids)}), encoding="utf-8")


@dataclass(frozen=True)
class RoadPart:
    """One segment's files and record, as the stitch downloaded them."""

    road_json: Path
    overlap_json: Path
    #: the segment's events, every one (road.json's), its own track ids
    events: Sequence[Mapping[str, Any]]
    #: where the segment's own frames start in the whole video, seconds
    start_s: float


def _boxes(tracks: Sequence[Mapping[str, Any]], track_map: Mapping[int, int] | None) -> list[TrackBox]:
    return [
        TrackBox(t["id"] if track_map is None else track_map[t["id"]], t["box_xyxy"], t.get("class"))
        for t in tracks
    ]


def track_maps(parts: Sequence[RoadPart], tally: RoadTally) -> list[dict[int, int] | None]:
    """Each segment's track id -> global id (None for the first, whose ids are kept), filling `tally` with the
    joined records on the way (one streamed pass over each road.json)."""
    overlaps = [json.loads(p.overlap_json.read_text(encoding="utf-8")) for p in parts]
    allocator = IdAllocator.after(overlaps[0]["track_ids"]) if parts else IdAllocator()
    maps: list[dict[int, int] | None] = []
    prev_boxes: dict[int, list[TrackBox]] = {}
    for k, (part, overlap) in enumerate(zip(parts, overlaps, strict=True)):
        track_map: dict[int, int] | None = None
        if k > 0:
            lead = {r["index"]: _boxes(r["tracks"], None) for r in overlap["lead_in"]}
            track_map = map_tracks(prev_boxes, lead, next_ids=overlap["track_ids"], allocator=allocator)
        maps.append(track_map)
        wanted = {r["index"] for r in overlaps[k + 1]["lead_in"]} if k + 1 < len(parts) else set()
        prev_boxes = {}
        with part.road_json.open("r", encoding="utf-8") as f:
            for record in read_json_stream(f, part.road_json.name).records:
                if track_map is not None:
                    record = remap_ids(record, track_map)
                tally.add(record)
                if record["index"] in wanted:
                    prev_boxes[record["index"]] = _boxes(record["tracks"], None)
    return maps


def join_road(parts: Sequence[RoadPart], road_dst: Path, timeline_dst: Path, frames_total: int) -> list[dict[str, Any]]:
    """The whole video's road.json and timeline.png from the segments' (in order); returns the joined events."""
    tally = RoadTally()
    maps = track_maps(parts, tally)
    events = merge_events(
        [[remap_ids(e, m) if m is not None else dict(e) for e in p.events] for p, m in zip(parts, maps, strict=True)],
        [p.start_s for p in parts[1:]],
    )
    first = read_tail(parts[0].road_json)
    video = dict(first.get("video", {}))
    video["frames"] = frames_total
    fps = video.get("fps")
    if fps:
        video["duration_s"] = frames_total / fps
    tail = {"events": events, "summary": tally.summary(events), "video": video}
    n = len(parts)
    concat_frames_json([p.road_json for p in parts], road_dst, [0] * n, [0.0] * n, maps, tail=tail)
    with parts[0].road_json.open("r", encoding="utf-8") as f:
        rules = read_json_stream(f, parts[0].road_json.name).head["rules"]
    tally.timeline(timeline_dst, events, rules, video)
    return events
