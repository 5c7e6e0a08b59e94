"""The `road` pipeline: lanes, tracked vehicles, and the following distance, time gap and TTC to the lead.

The staged run (decode -> detector + lane model on the sampled frames -> this sink) does the video work. The
sink is the domain per frame, in order: track (ByteTrack; predicted between inferred frames), smooth the lanes
and find the ego lane, pick the lead among the in-path vehicles, measure it (distance from its width, time
gap from the ego speed, TTC from its width's change), feed the event rules, draw, and write one `road.json`
record. The numbers are pure functions in the sibling modules; this one only wires them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final

import numpy as np

from framequeue.media.frames import Frame, VideoInfo
from framequeue.media.probe import probe
from framequeue.models.formats import get_format, get_result_format
from framequeue.models.predictions import Detections, Lanes
from framequeue.models.repository import ModelRepository
from framequeue.models.version import ModelVersion
from framequeue.pipelines.base import RunContext, RunResult
from framequeue.pipelines.outputs import JsonStream
from framequeue.pipelines.road import params as road_params
from framequeue.pipelines.road.events import COLLISION, FOLLOWING, FrameValues, RoadEvents
from framequeue.pipelines.road.geometry import Camera, camera_for, distance_from_width_m, ground_distance_m
from framequeue.pipelines.road.join import write_overlap
from framequeue.pipelines.road.kinematics import (
    DISTANCE_WINDOW_S,
    HISTORY_S,
    TTC_MIN_SAMPLES,
    TTC_WINDOW_S,
    EgoSpeed,
    WidthHistory,
    time_gap_s,
)
from framequeue.pipelines.road.lanes import EgoLane, LaneSmoother
from framequeue.pipelines.road.lead import Candidate, LeadConfig, LeadSelector, in_path, is_candidate
from framequeue.pipelines.road.overlay import LeadView, RoadView, TrackView, draw_road
from framequeue.pipelines.road.summary import RoadTally
from framequeue.pipelines.stages import Predictor, StagedJob, opened_backends, run_stages, stage_threads
from framequeue.tracking import ByteTracker, Track, TrackerConfig

OUTPUTS: Final = {
    "video": "annotated.mp4",
    "road": "road.json",
    "contact_sheet": "contact_sheet.png",
    "timeline": "timeline.png",
}
#: a split job's segment also writes what its stitch needs (framequeue.pipelines.road.join): never a job's output
OVERLAP_OUTPUT: Final = "overlap"
SEGMENT_OUTPUTS: Final = {**OUTPUTS, OVERLAP_OUTPUT: "overlap.json"}
#: detections down to this score reach the tracker (its second association uses the low ones)
DETECTOR_MIN_SCORE: Final = 0.1
#: a new track needs this much more score than the lead threshold (ByteTrack's high + 0.1)
NEW_TRACK_MARGIN: Final = 0.1
#: boxes of different vehicle classes overlapping this much are one vehicle (YOLOX boxes a van as car and truck)
DUPLICATE_IOU: Final = 0.7
#: a lead's width and ground-plane distances disagreeing by more than this share flag the width assumption
GROUND_CHECK_TOLERANCE: Final = 0.25


class RoadPipeline:
    name: ClassVar[str] = "road"
    version: ClassVar[str] = "1"

    def validate(self, params: Mapping[str, Any], models: ModelRepository) -> dict[str, Any]:
        """Params with defaults filled in, model versions pinned, the following profile resolved."""
        return road_params.validate(params, models)

    def run(self, ctx: RunContext) -> RunResult:
        started = time.monotonic()
        p = self.validate(ctx.params, ctx.models)
        detector_version = ctx.models.get(p["model"], p["model_version"])
        lanes_version = ctx.models.get(p["lane_model"], p["lane_model_version"])
        info = probe(ctx.input_path, ctx.limits)
        threads = stage_threads(ctx.threads).infer
        # the lane model runs in-process: its zero `input_mask` is not part of the OIP request
        with opened_backends((detector_version, ctx.model_url, threads), (lanes_version, None, threads)) as models:
            detector, lanes_model = models
            head = self._head(p, ctx, info, detector_version, lanes_version)
            job = StagedJob(
                name=self.name,
                outputs=OUTPUTS if ctx.segment is None else SEGMENT_OUTPUTS,
                primary="road",
                predictors=self._predictors(p, detector_version, lanes_version, detector, lanes_model),
                sink=lambda parts: RoadSink(parts, head, p, info, detector_version.classes),
                sample_fps=p["sample_fps"],
                batch_size=p["batch_size"],
                encode_preset=p["encode_preset"],
                crf=p["crf"],
            )
            return run_stages(ctx, info, job, started)

    @staticmethod
    def _predictors(
        p: dict[str, Any], detector_version: ModelVersion, lanes_version: ModelVersion, detector: Any, lanes: Any
    ) -> list[Predictor]:
        det_fmt = get_format(detector_version.format)(detector_version.input_size_hw, len(detector_version.classes))
        lane_fmt = get_result_format(lanes_version.format)(lanes_version.input_size_hw, len(lanes_version.classes))
        vehicles = np.asarray([detector_version.classes.index(c) for c in p["vehicle_widths_m"]], np.int64)
        nms_iou, lane_score = p["nms_iou"], p["lane_score_threshold"]

        def decode_vehicles(outputs: list[Any], scale: float, image_hw: tuple[int, int]) -> Detections:
            dets = det_fmt.decode(outputs, scale, image_hw, DETECTOR_MIN_SCORE, nms_iou, vehicles)
            return merge_duplicates(dets, DUPLICATE_IOU)

        def decode_lanes(outputs: list[Any], scale: Any, image_hw: tuple[int, int]) -> Lanes:
            return lane_fmt.decode(outputs, scale, image_hw, lane_score)  # type: ignore[return-value]

        return [
            Predictor("detector", detector, det_fmt.preprocess, decode_vehicles),
            Predictor("lanes", lanes, lane_fmt.preprocess, decode_lanes),
        ]

    def _head(
        self, p: dict[str, Any], ctx: RunContext, info: VideoInfo, detector: ModelVersion, lanes: ModelVersion
    ) -> dict[str, Any]:
        camera = camera_for(p["camera"], info.width, info.height)
        return {
            "pipeline": self.name,
            "pipeline_version": self.version,
            "model": {"name": detector.name, "version": detector.version},
            "lane_model": {"name": lanes.name, "version": lanes.version},
            "model_endpoint": ctx.model_url or "local",
            "camera": camera.to_json(),
            "assumptions": assumptions(p, camera, info),
            "rules": {"following": p["following"], "collision": p["collision"]},
        }


def assumptions(p: Mapping[str, Any], camera: Camera, info: VideoInfo) -> list[str]:
    """What the numbers rest on, in words, for the job's outputs."""
    out = []
    if camera.source == "default":
        out.append(
            f"focal length {camera.focal_px:.0f} px = the image width (horizontal field of view "
            f"{camera.hfov_deg:.1f} deg): no camera was given; every distance scales with the true focal length"
        )
    else:
        out.append(f"focal length {camera.focal_px:.1f} px from camera.{camera.source} (pinhole, no lens distortion)")
    widths = ", ".join(f"{k} {v:g} m" for k, v in p["vehicle_widths_m"].items())
    out.append(
        f"vehicle widths {widths}: distance = focal x width / box width, so a vehicle 10 % wider than assumed "
        f"reads 10 % nearer; boxes cut by the image edge or centred in the bottom {p['hood_fraction']:.0%} (hood) "
        f"are never the lead"
    )
    if p["speed_mps"] is not None:
        out.append(f"ego speed {p['speed_mps']:g} m/s (constant, from the job)")
    elif p["speed_track"] is not None:
        track = p["speed_track"]
        out.append(
            f"ego speed interpolated from speed_track ({len(track)} points, {track[0][0]:g}-{track[-1][0]:g} s); "
            f"unknown outside it"
        )
    else:
        out.append("no ego speed given: no time gap and no following_too_close event")
    out.append(
        "ego lane from the two lanes nearest the image centre; without two plausible lanes, a corridor "
        "|X| <= 1.5 m around the camera's line of sight (camera assumed centred and looking straight ahead)"
    )
    out.append(
        f"distance smoothed by a line fit over {DISTANCE_WINDOW_S:g} s; TTC from the lead's width change fitted "
        f"over {TTC_WINDOW_S:g} s with at least {TTC_MIN_SAMPLES} inferred frames, reported below 10 s while closing"
    )
    rate = p["sample_fps"] if p["sample_fps"] is not None else float(info.rate)
    if rate * 2.0 < TTC_MIN_SAMPLES:
        out.append(f"inference at {rate:g} frames/s gives fewer than {TTC_MIN_SAMPLES} samples in 2 s: no TTC")
    if camera.height_m is not None:
        out.append(
            f"camera {camera.height_m:g} m above a flat road: distance_ground_m from the box's bottom edge and the "
            f"horizon (camera.horizon_y_px, else where the ego lane's lines meet, else the image centre row) "
            f"cross-checks distance_m"
        )
    return out


def merge_duplicates(dets: Detections, iou: float) -> Detections:
    """Cross-class NMS: of boxes overlapping by more than `iou`, the highest score's stays (scores descend)."""
    n = len(dets)
    if n < 2:
        return dets
    boxes = dets.xyxy.astype(np.float64)
    area = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    x1 = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    y1 = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    x2 = np.minimum(boxes[:, None, 2], boxes[None, :, 2])
    y2 = np.minimum(boxes[:, None, 3], boxes[None, :, 3])
    inter = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    overlap = inter / np.maximum(area[:, None] + area[None, :] - inter, 1e-9)
    keep = np.ones(n, bool)
    for i in range(n):
        if keep[i]:
            keep[i + 1 :] &= overlap[i, i + 1 :] <= iou
    if keep.all():
        return dets
    return Detections(dets.xyxy[keep], dets.class_id[keep], dets.score[keep])


def _box(values: Sequence[float] | np.ndarray) -> list[float]:
    return [round(float(v), 1) for v in values]


def _box4(values: Sequence[float] | np.ndarray) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in values)
    return (x1, y1, x2, y2)


def _num(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


class RoadSink:
    """The road domain over the frames of one video, in presentation order."""

    def __init__(
        self,
        parts: Mapping[str, Path],
        head: dict[str, Any],
        p: Mapping[str, Any],
        info: VideoInfo,
        class_names: Sequence[str],
    ) -> None:
        self.stats: dict[str, float] = dict.fromkeys(("track_s", "lanes_s", "geometry_s", "draw_s", "json_s"), 0.0)
        self.p = p
        self.class_names = class_names
        self.widths_m: dict[str, float] = dict(p["vehicle_widths_m"])
        self.camera = camera_for(p["camera"], info.width, info.height)
        self.image_wh = (info.width, info.height)
        high = float(p["score_threshold"])
        self.tracker = ByteTracker(
            TrackerConfig(
                high_score=high,
                low_score=min(DETECTOR_MIN_SCORE, high),
                new_track_score=min(1.0, high + NEW_TRACK_MARGIN),
            )
        )
        self.lanes = LaneSmoother(info.width, info.height)
        self.lead_config = LeadConfig(min_score=high, hood_fraction=float(p["hood_fraction"]))
        self.selector = LeadSelector(self.lead_config)
        self.speed = EgoSpeed(p["speed_mps"], p["speed_track"])
        period_s = float(1 / info.rate) if info.rate > 0 else 1 / 25
        self.events = RoadEvents(p["following"], p["collision"], period_s)
        self.period_s = period_s
        self.histories: dict[int, WidthHistory] = {}
        self.tracks: list[Track] = []
        self.tally = RoadTally()
        self.last_t_s = 0.0
        self.timeline_part = parts["timeline"]
        self.rules = head["rules"]
        self.json = JsonStream(parts["road"], head)
        #: a segment's run (framequeue.pipelines.stages.warm_sink): its lead-in's tracked boxes, for the stitch
        self.overlap_part = parts.get(OVERLAP_OUTPUT)
        self.lead_in: list[dict[str, Any]] = []

    def warm(self, frame: Frame, results: Sequence[Any] | None) -> None:
        """A segment's lead-in frame: tracker, lanes, lead and event rules take it in; nothing is drawn,
        written or counted, but its tracked boxes are kept for the stitch to map track ids by."""
        self._step(frame, results)
        self.lead_in.append({"index": frame.index, "tracks": self._tracks_json()})

    def frame(self, frame: Frame, results: Sequence[Any] | None) -> None:
        t0 = time.monotonic()
        smooth_lanes, ego, lead, speed, values, (t1, t2, t3) = self._step(frame, results)
        gap, ttc = values.time_gap_s, values.ttc_s
        if lead is not None:
            lead["time_gap_s"] = _num(gap, 3)
        banners = self._banners(gap, ttc)
        view = RoadView(
            t_s=values.t_s,
            speed_mps=speed,
            lanes=[lane.points for lane in smooth_lanes],
            ego_polygon=ego.polygon if ego is not None else None,
            tracks=[TrackView(tr.track_id, self._class(tr), _box4(tr.box_xyxy)) for tr in self.tracks],
            lead=None
            if lead is None
            else LeadView(lead["track_id"], _box4(lead["box_xyxy"]), lead["distance_m"], gap, ttc),
            banners=banners,
            show_ids=self.overlap_part is None,
        )
        draw_road(frame.image, view)
        t4 = time.monotonic()
        record = self._record(frame, results is not None, smooth_lanes, ego, lead, speed)
        self.tally.add(record)
        self.json.write(record)
        self.last_t_s = values.t_s
        self.stats["track_s"] += t1 - t0
        self.stats["lanes_s"] += t2 - t1
        self.stats["geometry_s"] += t3 - t2
        self.stats["draw_s"] += t4 - t3
        self.stats["json_s"] += time.monotonic() - t4

    def _step(
        self, frame: Frame, results: Sequence[Any] | None
    ) -> tuple[list[Any], EgoLane | None, dict[str, Any] | None, float | None, FrameValues, tuple[float, ...]]:
        """The domain's state carried to `frame`: tracks, lanes, the lead, the event rules."""
        t_s = frame.time_s
        if results is not None:
            detections, lanes = results
            self.tracks = self.tracker.update_detections(t_s, detections)
            for track in self.tracks:
                if track.det_box_xyxy is not None:
                    box = track.det_box_xyxy
                    self.histories.setdefault(track.track_id, WidthHistory()).add(t_s, float(box[2] - box[0]))
            self._forget(t_s)
        else:
            self.tracks = self.tracker.predict(t_s)
        t1 = time.monotonic()
        if results is not None:
            self.lanes.update(t_s, lanes.polylines, [float(s) for s in lanes.score])
        smooth_lanes = self.lanes.lanes()
        ego = self.lanes.ego_lane(smooth_lanes)
        t2 = time.monotonic()
        lead = self._lead(t_s, ego)
        speed = self.speed.at(t_s)
        gap = time_gap_s(lead["distance_m"], speed) if lead else None
        ttc = lead["ttc_s"] if lead else None
        values = FrameValues(
            t_s, lead["track_id"] if lead else None, lead["distance_m"] if lead else None, gap, ttc, speed
        )
        self.events.update(values)
        return smooth_lanes, ego, lead, speed, values, (t1, t2, time.monotonic())

    def _class(self, track: Track) -> str:
        cid = track.class_id
        return self.class_names[cid] if 0 <= cid < len(self.class_names) else str(cid)

    def _forget(self, t_s: float) -> None:
        """Drop the width histories of tracks gone longer than the history keeps (memory stays flat)."""
        stale = [tid for tid, h in self.histories.items() if h.last_t_s is None or h.last_t_s < t_s - HISTORY_S]
        for tid in stale:
            del self.histories[tid]

    def _lead(self, t_s: float, ego: EgoLane | None) -> dict[str, Any] | None:
        """The lead's record at t_s (track, box, distance, TTC), None when no vehicle is in path."""
        candidates, boxes = [], {}
        for track in self.tracks:
            name = self._class(track)
            box = [float(v) for v in track.box_xyxy]
            if not is_candidate(box, track.score, name in self.widths_m, self.image_wh, self.lead_config):
                continue
            history = self.histories.get(track.track_id)
            distance = history.distance_m(t_s, self.camera.focal_px, self.widths_m[name]) if history else None
            if distance is None:
                distance = distance_from_width_m(self.camera.focal_px, self.widths_m[name], box[2] - box[0])
            if in_path(box, ego, self.camera, distance, self.lead_config):
                candidates.append(Candidate(track.track_id, distance))
                boxes[track.track_id] = (track, box, distance, history)
        lead_id = self.selector.update(t_s, candidates)
        if lead_id is None:
            return None
        track, box, distance, history = boxes[lead_id]
        record: dict[str, Any] = {
            "track_id": lead_id,
            "class": self._class(track),
            "box_xyxy": _box(box),
            "distance_m": round(distance, 2),
            "time_gap_s": None,
            "ttc_s": _num(history.ttc_s(t_s) if history else None, 3),
            "in_path_by": "lanes" if ego is not None else "corridor",
        }
        if self.camera.height_m is not None:
            horizon = self._horizon_y_px(ego)
            ground = ground_distance_m(self.camera, box[3], horizon)
            record["distance_ground_m"] = _num(ground, 2)
            record["distance_check"] = (
                None
                if ground is None
                else "agrees"
                if abs(distance - ground) <= GROUND_CHECK_TOLERANCE * ground
                else "disagrees"
            )
        return record

    def _horizon_y_px(self, ego: EgoLane | None) -> float:
        """The horizon row: the job's, else where the ego lane's lines meet, else the image centre row."""
        if self.camera.horizon_y_px is not None:
            return self.camera.horizon_y_px
        vanishing = ego.vanishing_point() if ego is not None else None
        return vanishing[1] if vanishing is not None else self.camera.cy_px

    def _banners(self, gap: float | None, ttc: float | None) -> list[str]:
        out = []
        for kind in self.events.active():
            if kind == FOLLOWING:
                out.append("FOLLOWING TOO CLOSE" + (f"  {gap:.1f} s" if gap is not None else ""))
            elif kind == COLLISION:
                out.append("FORWARD COLLISION WARNING" + (f"  TTC {ttc:.1f} s" if ttc is not None else ""))
        return out

    def _record(
        self, frame: Frame, inferred: bool, lanes: Sequence[Any], ego: EgoLane | None, lead: Any, speed: float | None
    ) -> dict[str, Any]:
        return {
            "index": frame.index,
            "t_s": round(frame.time_s, 6),
            "inferred": inferred,
            "tracks": self._tracks_json(),
            "lanes": [{"points": np.round(lane.points, 1).tolist(), "score": round(lane.score, 4)} for lane in lanes],
            "ego_lane": (
                {"source": "lanes", "polygon": np.round(ego.polygon, 1).tolist()}
                if ego is not None
                else {"source": "corridor", "polygon": None, "half_width_m": self.lead_config.corridor_half_width_m}
            ),
            "lead": lead,
            "speed_mps": _num(speed, 3),
        }

    def _tracks_json(self) -> list[dict[str, Any]]:
        return [
            {"id": tr.track_id, "class": self._class(tr), "score": round(tr.score, 4), "box_xyxy": _box(tr.box_xyxy)}
            for tr in self.tracks
        ]

    def finish(self, video: Mapping[str, Any]) -> list[dict[str, Any]]:
        t0 = time.monotonic()
        events = self.events.finish(self.last_t_s + self.period_s)
        self.json.finish({"events": events, "summary": self.tally.summary(events), "video": dict(video)})
        self.tally.timeline(self.timeline_part, events, self.rules, video)
        if self.overlap_part is not None:
            write_overlap(self.overlap_part, self.lead_in, sorted(self.tally.track_ids))
        self.stats["timeline_s"] = time.monotonic() - t0
        return events

    def abort(self) -> None:
        self.json.abort()
        if self.overlap_part is not None:
            self.overlap_part.unlink(missing_ok=True)
