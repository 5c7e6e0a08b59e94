"""Joining the results of a split video's segments (pure, no media): track ids carried across each boundary
by box overlap on the lead-in frames, events that cross a boundary merged into one, and the segments'
per-frame JSON concatenated with global frame indices, times and track ids.

Segment k+1 decodes a lead-in: frames that segment k also processed. On those frames both saw the same
objects, so k+1's track ids are mapped to k's (already global) ids by IoU votes; ids with no match get fresh
ids from one `IdAllocator` shared by the whole stitch, so ids never collide across segments.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, NamedTuple, TypeGuard

from framequeue.pipelines.outputs import JsonStream

#: keys whose int value is a track id, anywhere in a record or event
TRACK_ID_KEYS: Final = frozenset({"track_id", "lead_track_id", "driver_track_id"})
#: keys whose list value holds track ids
TRACK_IDS_KEYS: Final = frozenset({"lead_track_ids", "track_ids"})
#: a list under this key holds tracks whose "id" is a track id (the road pipeline's records)
TRACKS_KEY: Final = "tracks"
#: a record's frame index and time, by pipeline: detect writes frame/time_s, road and driver index/t_s
FRAME_KEYS: Final = ("frame", "index")
TIME_KEYS: Final = ("time_s", "t_s")


class TrackBox(NamedTuple):
    """One tracked box on one frame."""

    track_id: int
    box_xyxy: Sequence[float]
    #: class name; boxes of different known classes never match
    label: str | None = None


@dataclass
class IdAllocator:
    """Hands out track ids never used before in the stitched result."""

    next_id: int = 1

    @classmethod
    def after(cls, ids: Iterable[int]) -> IdAllocator:
        return cls(max(ids, default=0) + 1)

    def take(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two xyxy boxes; 0 for empty ones."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def map_tracks(
    prev_boxes: Mapping[int, Sequence[TrackBox]],
    next_lead_boxes: Mapping[int, Sequence[TrackBox]],
    min_iou: float = 0.3,
    *,
    next_ids: Iterable[int] = (),
    allocator: IdAllocator | None = None,
) -> dict[int, int]:
    """Segment k+1's track ids -> global ids. `prev_boxes`: segment k's boxes (global ids) by global frame
    index; `next_lead_boxes`: segment k+1's boxes (its own ids) on its lead-in frames, by global frame index.

    On every frame both have, boxes pair greedily by IoU (>= `min_iou`, same label when both have one); each
    pair is a vote; then ids pair one-to-one, most votes first. Every id of k+1 (those in its lead-in and
    those in `next_ids`) is in the result: unmatched ones get `allocator.take()` (default: a new allocator
    above prev's ids, which only suits a two-segment stitch; share one across a stitch)."""
    if allocator is None:
        allocator = IdAllocator.after(b.track_id for boxes in prev_boxes.values() for b in boxes)
    votes: Counter[tuple[int, int]] = Counter()
    for frame in sorted(prev_boxes.keys() & next_lead_boxes.keys()):
        for pair in _frame_pairs(prev_boxes[frame], next_lead_boxes[frame], min_iou):
            votes[pair] += 1
    mapping: dict[int, int] = {}
    taken: set[int] = set()
    for (next_id, prev_id), _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])):
        if next_id not in mapping and prev_id not in taken:
            mapping[next_id] = prev_id
            taken.add(prev_id)
    lead_ids = {b.track_id for boxes in next_lead_boxes.values() for b in boxes}
    for next_id in sorted(lead_ids | set(next_ids)):
        if next_id not in mapping:
            mapping[next_id] = allocator.take()
    return mapping


def _frame_pairs(prev: Sequence[TrackBox], nxt: Sequence[TrackBox], min_iou: float) -> list[tuple[int, int]]:
    """(next id, prev id) pairs of one frame, greedy by IoU."""
    scored = []
    for p in prev:
        for n in nxt:
            if p.label is not None and n.label is not None and p.label != n.label:
                continue
            overlap = iou(p.box_xyxy, n.box_xyxy)
            if overlap >= min_iou:
                scored.append((-overlap, n.track_id, p.track_id))
    pairs, used_next, used_prev = [], set(), set()
    for _, n_id, p_id in sorted(scored):
        if n_id not in used_next and p_id not in used_prev:
            pairs.append((n_id, p_id))
            used_next.add(n_id)
            used_prev.add(p_id)
    return pairs


def remap_ids(value: Any, track_map: Mapping[int, int], key: str | None = None) -> Any:
    """`value` (a record, an event) with every track id mapped; an id missing from the map is a ValueError."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in TRACK_ID_KEYS and isinstance(v, int):
                out[k] = _mapped(v, track_map, k)
            elif k in TRACK_IDS_KEYS and isinstance(v, list):
                out[k] = sorted(_mapped(i, track_map, k) for i in v)
            else:
                out[k] = remap_ids(v, track_map, k)
        if key == TRACKS_KEY and isinstance(out.get("id"), int):
            out["id"] = _mapped(out["id"], track_map, "id")
        return out
    if isinstance(value, list):
        return [remap_ids(v, track_map, key) for v in value]
    return value


def _mapped(track_id: int, track_map: Mapping[int, int], key: str) -> int:
    try:
        return track_map[track_id]
    except KeyError:
        raise ValueError(f"track id {track_id} ({key}) is not in the segment's track map") from None


def merge_events(
    events: Sequence[Sequence[Mapping[str, Any]]], boundaries_s: Sequence[float], tolerance_s: float = 0.1
) -> list[dict[str, Any]]:
    """One list of events from each segment's (global times, mapped track ids; `boundaries_s[k]` is where
    segment k+1 starts). An event of segment k+1 that starts by its boundary (+ tolerance) and an event of
    the same type and track_id up to there that reaches the boundary (- tolerance) are one event: start_s
    the first's, end_s the last's, min_* the min, max_* the max, mean_* weighted by duration (the overlap
    once), id lists joined, other *_s totals added less the overlap, other values the longer part's. An event of segment
    k+1 that ends before its boundary lies in its lead-in and is dropped (segment k reported those frames).
    By start time."""
    if len(boundaries_s) != max(0, len(events) - 1):
        raise ValueError(f"{len(events)} segments need {max(0, len(events) - 1)} boundaries, got {len(boundaries_s)}")
    merged: list[dict[str, Any]] = [dict(e) for e in events[0]] if events else []
    for b, segment in zip(boundaries_s, events[1:], strict=True):
        for event in segment:
            if event["end_s"] < b - tolerance_s:
                # all in segment k+1's lead-in: segment k saw those frames, with more history
                continue
            into = _joinable(merged, event, b, tolerance_s)
            if into is None:
                merged.append(dict(event))
            else:
                merged[into] = _combine(merged[into], event)
    return sorted(merged, key=lambda e: (e["start_s"], e["type"]))


def _identity(event: Mapping[str, Any]) -> tuple[Any, ...]:
    return (event["type"], event.get("track_id"))


def _joinable(merged: list[dict[str, Any]], event: Mapping[str, Any], b: float, tol: float) -> int | None:
    if event["start_s"] > b + tol:
        return None
    for i in range(len(merged) - 1, -1, -1):
        m = merged[i]
        if _identity(m) == _identity(event) and m["end_s"] >= b - tol and event["start_s"] <= m["end_s"] + tol:
            return i
    return None


def _combine(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    start, end = min(a["start_s"], b["start_s"]), max(a["end_s"], b["end_s"])
    overlap = max(0.0, min(a["end_s"], b["end_s"]) - max(a["start_s"], b["start_s"]))
    dur_a, dur_b = a["end_s"] - a["start_s"], b["end_s"] - b["start_s"]
    longer = a if dur_a >= dur_b else b
    out = dict(longer)
    for key in a.keys() | b.keys():
        x, y = a.get(key), b.get(key)
        if key in ("type", "start_s", "end_s", "duration_s") or key in TRACK_ID_KEYS:
            continue
        if isinstance(x, list) or isinstance(y, list):
            out[key] = sorted(set(x or []) | set(y or []))
        elif not _number(x) or not _number(y):
            out[key] = x if _number(x) else y if _number(y) else longer.get(key)
        elif key.startswith("min_"):
            out[key] = min(x, y)
        elif key.startswith("max_"):
            out[key] = max(x, y)
        elif key.startswith("mean_"):
            # the overlap (segment k+1's lead-in) counted once, as the later part saw it
            union = dur_a + dur_b - overlap
            out[key] = round((x * (dur_a - overlap) + y * dur_b) / union, 3) if union > 0 else x
        elif key.endswith("_s"):
            out[key] = round(max(0.0, x + y - overlap), 3)
    out["start_s"], out["end_s"] = start, end
    if "duration_s" in a or "duration_s" in b:
        out["duration_s"] = round(end - start, 3)
    return out


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class StreamedJson:
    """A JsonStream file read back: its head keys, its list's key, and its records one at a time."""

    head: dict[str, Any]
    list_key: str
    records: Iterator[dict[str, Any]]
    #: filled once `records` is exhausted
    tail: dict[str, Any] = field(default_factory=dict)


def read_json_stream(file: IO[str], name: str = "json") -> StreamedJson:
    """Read what `outputs.JsonStream` wrote (one record a line) without holding it whole."""
    first = file.readline()
    if not first.rstrip("\n").endswith("["):
        raise ValueError(f"{name} is not a JsonStream file (no list opens its first line)")
    head = json.loads(first.rstrip("\n") + "]}")
    list_key = list(head)[-1]
    del head[list_key]
    streamed = StreamedJson(head, list_key, iter(()))

    def records() -> Iterator[dict[str, Any]]:
        for line in file:
            text = line.rstrip("\n")
            if text.startswith("]"):
                rest = text[1:].lstrip(", ")
                streamed.tail = json.loads("{" + rest) if rest != "}" else {}
                return
            try:
                yield json.loads(text.rstrip(","))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{name}: a damaged or incomplete record ({exc})") from None
        raise ValueError(f"{name} ends inside its list (incomplete)")

    streamed.records = records()
    return streamed


def read_tail(path: Path) -> dict[str, Any]:
    """The keys a JsonStream file has after its list (summary, events); reads only the file's end."""
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        chunk = 4096
        while True:
            start = max(0, size - chunk)
            f.seek(start)
            data = f.read(size - start).decode("utf-8", errors="strict" if start == 0 else "ignore")
            at = data.rfind("\n]")
            if at >= 0 or start == 0:
                break
            chunk *= 4
    if at < 0:
        raise ValueError(f"{path.name} is not a finished JsonStream file")
    rest = data[at + 2 :].strip().lstrip(", ")
    return json.loads("{" + rest) if rest != "}" else {}


def concat_frames_json(
    parts: Sequence[Path],
    dst: Path,
    frame_offsets: Sequence[int],
    time_offsets: Sequence[float],
    track_maps: Sequence[Mapping[int, int] | None],
    *,
    head: Mapping[str, Any] | None = None,
    tail: Mapping[str, Any] | None = None,
) -> int:
    """Stream the segments' per-frame JSON into one JsonStream file `dst`: each record's frame index plus
    its part's frame offset, its time plus the time offset, its track ids through the part's map (None:
    unchanged). Global frame indices must rise (a part holds only its own frames, no lead-in). `head`
    defaults to the first part's head, `tail` to none (the caller writes the merged summary and events).
    Returns the records written; `dst` is removed on any error."""
    if not (len(parts) == len(frame_offsets) == len(time_offsets) == len(track_maps)):
        raise ValueError("parts, frame_offsets, time_offsets and track_maps must have one entry per part")
    out: JsonStream | None = None
    written, last_frame = 0, -1
    try:
        for path, frame_offset, time_offset, track_map in zip(
            parts, frame_offsets, time_offsets, track_maps, strict=True
        ):
            with path.open("r", encoding="utf-8") as f:
                part = read_json_stream(f, path.name)
                if out is None:
                    out = JsonStream(dst, part.head if head is None else head, part.list_key)
                for record in part.records:
                    glob = _globalised(record, frame_offset, time_offset, track_map)
                    frame = next((glob[k] for k in FRAME_KEYS if k in glob), None)
                    if frame is not None:
                        if frame <= last_frame:
                            raise ValueError(f"{path.name}: global frame {frame} does not follow frame {last_frame}")
                        last_frame = frame
                    out.write(glob)
                    written += 1
        if out is None:
            raise ValueError("concat_frames_json needs at least one part")
        out.finish(tail or {})
    except BaseException:
        if out is not None:
            out.abort()
        dst.unlink(missing_ok=True)
        raise
    return written


def _globalised(
    record: dict[str, Any], frame_offset: int, time_offset: float, track_map: Mapping[int, int] | None
) -> dict[str, Any]:
    out = record if track_map is None else remap_ids(record, track_map)
    for key in FRAME_KEYS:
        if isinstance(out.get(key), int):
            out[key] += frame_offset
    for key in TIME_KEYS:
        if _number(out.get(key)):
            out[key] = round(out[key] + time_offset, 6)
    return out
