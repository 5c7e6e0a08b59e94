"""The `driver` pipeline: 3-D head pose on driver-facing video and the distraction events fleets coach on.

The staged run (decode -> face detector on the sampled frames -> this sink) does the video work. The sink,
per frame: track the faces (ByteTrack; predicted between inferred frames), run FaceMesh on each tracked face
(a crop with the eyes levelled), solve the head pose from all 468 landmarks against the canonical face, smooth
each angle (One Euro), pick the driver (the largest, most persistent face), judge off road against the
driver's neutral pose, feed the event rules, draw, and write one `driver.json` record. The rules and the
geometry are pure functions in the sibling modules; this one only wires them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

import cv2
import numpy as np
import numpy.typing as npt

from framequeue.media.frames import Frame, VideoInfo
from framequeue.media.probe import probe
from framequeue.models.formats import get_result_format
from framequeue.models.formats.facemesh import INPUT_SIDE, FacemeshFormat, crop_transform
from framequeue.models.predictions import Faces
from framequeue.models.repository import ModelRepository
from framequeue.models.runtimes import InferenceBackend
from framequeue.models.version import CANONICAL_FACE_FILE, ModelVersion
from framequeue.pipelines.base import RunContext, RunResult
from framequeue.pipelines.camera import Camera, camera_for
from framequeue.pipelines.driver import params as driver_params
from framequeue.pipelines.driver.attention import NeutralPose, OffRoadRule
from framequeue.pipelines.driver.events import LONG, NOT_VISIBLE, SHORT, Attention, DriverEvents
from framequeue.pipelines.driver.headpose import (
    HeadPose,
    camera_matrix,
    head_box_corners,
    load_canonical_face,
    rotation_from_angles,
    solve_head_pose,
)
from framequeue.pipelines.driver.one_euro import OneEuroVector
from framequeue.pipelines.driver.overlay import DriverView, FaceView, draw_driver
from framequeue.pipelines.driver.selection import DriverSelector
from framequeue.pipelines.driver.timeline import plot_timeline
from framequeue.pipelines.outputs import JsonStream, Series
from framequeue.pipelines.speed import EgoSpeed
from framequeue.pipelines.stages import Predictor, StagedJob, opened_backends, run_stages, stage_threads
from framequeue.tracking import ByteTracker, Track, TrackerConfig

OUTPUTS: Final = {
    "video": "annotated.mp4",
    "driver": "driver.json",
    "contact_sheet": "contact_sheet.png",
    "timeline": "timeline.png",
}
#: faces down to this score reach the tracker (its second association uses the low ones)
DETECTOR_MIN_SCORE: Final = 0.3
#: FaceMesh's face presence below this means the crop holds no face: no pose
MIN_PRESENCE: Final = 0.5
#: a pose whose RMS reprojection error exceeds this share of the face box's width is rejected
MAX_REPROJECTION_SHARE: Final = 0.08
#: a driver face lost for up to this long keeps its last state (a head turned past what the detector sees)
HOLD_S: Final = 1.0
#: length of the drawn pose axes, cm
AXIS_CM: Final = 8.0
#: the indexes of the eyes in every face format's landmarks (YuNet and BlazeFace: right eye, left eye first)
RIGHT_EYE, LEFT_EYE = 0, 1


class DriverPipeline:
    name: ClassVar[str] = "driver"
    version: ClassVar[str] = "1"

    def validate(self, params: Mapping[str, Any], models: ModelRepository) -> dict[str, Any]:
        return driver_params.validate(params, models)

    def run(self, ctx: RunContext) -> RunResult:
        started = time.monotonic()
        p = self.validate(ctx.params, ctx.models)
        face_version = ctx.models.get(p["face_model"], p["face_model_version"])
        mesh_version = ctx.models.get(p["landmark_model"], p["landmark_model_version"])
        info = probe(ctx.input_path, ctx.limits)
        threads = stage_threads(ctx.threads).infer
        # FaceMesh runs in-process in the sink, on one thread beside the encoder
        with opened_backends((face_version, ctx.model_url, threads), (mesh_version, None, 1)) as models:
            faces, mesh = models
            fmt = get_result_format(face_version.format)(face_version.input_size_hw, 1)
            threshold = min(DETECTOR_MIN_SCORE, p["face_score_threshold"])

            def decode(outputs: list[Any], scale: Any, image_hw: tuple[int, int]) -> Faces:
                return fmt.decode(outputs, scale, image_hw, threshold)  # type: ignore[return-value]

            model_points = load_canonical_face(mesh_version.path / CANONICAL_FACE_FILE)
            head = self._head(p, ctx, info, face_version, mesh_version)
            job = StagedJob(
                name=self.name,
                outputs=OUTPUTS,
                primary="driver",
                predictors=[Predictor("faces", faces, fmt.preprocess, decode)],
                sink=lambda parts: DriverSink(parts, head, p, info, mesh, model_points),
                sample_fps=p["sample_fps"],
                batch_size=p["batch_size"],
                encode_preset=p["encode_preset"],
                crf=p["crf"],
            )
            return run_stages(ctx, info, job, started)

    def _head(
        self, p: dict[str, Any], ctx: RunContext, info: VideoInfo, faces: ModelVersion, mesh: ModelVersion
    ) -> dict[str, Any]:
        camera = camera_for(p["camera"], info.width, info.height)
        return {
            "pipeline": self.name,
            "pipeline_version": self.version,
            "face_model": {"name": faces.name, "version": faces.version},
            "landmark_model": {"name": mesh.name, "version": mesh.version},
            "model_endpoint": ctx.model_url or "local",
            "camera": camera.to_json(),
            "assumptions": assumptions(p, camera),
            "angles": {
                "yaw_deg": "+ when the nose turns toward the image's left edge",
                "pitch_deg": "+ when the face tilts down",
                "roll_deg": "+ when the head tilts clockwise in the image",
            },
            "rules": {"off_road": p["off_road"], "distraction": p["distraction"], "smoothing": p["smoothing"]},
        }


def assumptions(p: Mapping[str, Any], camera: Camera) -> list[str]:
    """What the numbers rest on, in words, for the job's outputs."""
    out = []
    if camera.source == "default":
        out.append(
            f"focal length {camera.focal_px:.0f} px = the image width: no camera was given; a wrong focal length "
            f"biases the angles by a few degrees (x0.7 or x1.4: under 4 deg at p95)"
        )
    else:
        out.append(f"focal length {camera.focal_px:.1f} px from camera.{camera.source} (pinhole, no lens distortion)")
    out.append(
        "head pose from all 468 FaceMesh landmarks fitted to MediaPipe's canonical face (cv2.solvePnP), smoothed "
        "per angle by a One Euro filter; it follows the head, not the eyes: an eyes-only glance reads as on road"
    )
    if p["neutral_pose"] is not None:
        out.append("the driver's neutral (eyes on the road) pose was given by the job")
    else:
        out.append(
            "the driver's neutral pose is the median pose over the first 10 s with the driver's face (provisional "
            "until then), clamped to 30 deg: the driver is assumed to watch the road most of that time"
        )
    d = p["distraction"]
    if p["speed_mps"] is None and p["speed_track"] is None:
        out.append("no ego speed given: off-road time counts whatever the speed")
    else:
        out.append(
            f"off-road time counts only at {d['min_speed_mps']:.1f} m/s ({3.6 * d['min_speed_mps']:.0f} km/h) or more"
        )
    out.append(
        "the driver is the face track with the most face-seconds weighted by size; a driver face lost for up to "
        f"{HOLD_S:g} s keeps its last state (a head turned past what the detector sees)"
    )
    return out


@dataclass
class _FaceState:
    """What the sink knows of one face track."""

    smoother: OneEuroVector
    position: OneEuroVector
    pose: HeadPose | None = None
    #: smoothed (yaw, pitch, roll) degrees and translation (cm), once a pose was solved
    angles_deg: tuple[float, float, float] | None = None
    tvec_cm: tuple[float, float, float] | None = None
    last_pose_t_s: float = -math.inf
    box_xyxy: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    score: float = 0.0


class DriverSink:
    """The driver domain over the frames of one video, in presentation order."""

    def __init__(
        self,
        parts: Mapping[str, Path],
        head: dict[str, Any],
        p: Mapping[str, Any],
        info: VideoInfo,
        mesh: InferenceBackend,
        model_points: npt.NDArray[np.float64],
    ) -> None:
        self.stats: dict[str, float] = dict.fromkeys(("track_s", "mesh_s", "pose_s", "draw_s", "json_s"), 0.0)
        self.p = p
        self.info = info
        self.mesh = mesh
        self.mesh_format = FacemeshFormat()
        self.model_points = model_points
        self.box_corners = head_box_corners(model_points)
        self.axes_points = np.array([[0, 0, 0], [AXIS_CM, 0, 0], [0, AXIS_CM, 0], [0, 0, AXIS_CM]], np.float64)
        camera = camera_for(p["camera"], info.width, info.height)
        self.k = camera_matrix(info.width, info.height, camera.focal_px)
        high = float(p["face_score_threshold"])
        # a face is confirmed at its first confident detection (min_hits 1): face detectors rarely hallucinate a
        # face at this score, and the driver's face is then on the very first frame
        self.tracker = ByteTracker(
            TrackerConfig(high_score=high, low_score=min(DETECTOR_MIN_SCORE, high), new_track_score=high, min_hits=1)
        )
        self.tracks: list[Track] = []
        self.faces: dict[int, _FaceState] = {}
        self.selector = DriverSelector()
        self.neutral = NeutralPose(p["neutral_pose"])
        self.rule = OffRoadRule.of(p["off_road"])
        self.speed = EgoSpeed(p["speed_mps"], p["speed_track"])
        self.period_s = float(1 / info.rate) if info.rate > 0 else 1 / 25
        self.events = DriverEvents(p["distraction"], self.period_s, self.speed.known)
        self.off_road = False
        self.last_driver: int | None = None
        self.last_driver_t_s = -math.inf
        self.series = Series(("yaw_deg", "pitch_deg"))
        self.counts = dict.fromkeys(("frames", "driver", "off_road"), 0)
        self.last_t_s = 0.0
        self.max_track_id = 0
        self.timeline_part = parts["timeline"]
        self.json = JsonStream(parts["driver"], head)

    def frame(self, frame: Frame, results: Sequence[Any] | None) -> None:
        t_s = frame.time_s
        t0 = time.monotonic()
        if results is not None:
            (faces,) = results
            self.tracks = self.tracker.update(t_s, faces.xyxy, faces.score, np.zeros(len(faces), np.int64))
            self.max_track_id = max([self.max_track_id, *(tr.track_id for tr in self.tracks)])
        else:
            self.tracks = self.tracker.predict(t_s)
        t1 = time.monotonic()
        if results is not None:
            self._landmarks(frame, t_s, faces)
        t2 = time.monotonic()
        for track in self.tracks:
            state = self._state(track.track_id)
            state.box_xyxy = tuple(float(v) for v in track.box_xyxy)  # type: ignore[assignment]
            state.score = track.score
        driver, held = self._driver(t_s)
        attention = self._attend(t_s, driver)
        t3 = time.monotonic()
        draw_driver(frame.image, self._view(t_s, driver, held))
        t4 = time.monotonic()
        self.json.write(self._record(frame, results is not None, driver, held, attention))
        self.last_t_s = t_s
        self.stats["track_s"] += t1 - t0
        self.stats["mesh_s"] += t2 - t1
        self.stats["pose_s"] += t3 - t2
        self.stats["draw_s"] += t4 - t3
        self.stats["json_s"] += time.monotonic() - t4

    def _state(self, track_id: int) -> _FaceState:
        state = self.faces.get(track_id)
        if state is None:
            s = self.p["smoothing"]
            state = _FaceState(
                OneEuroVector(3, s["min_cutoff_hz"], s["beta"], s["d_cutoff_hz"]),
                OneEuroVector(3, s["min_cutoff_hz"], s["beta"], s["d_cutoff_hz"]),
            )
            self.faces[track_id] = state
        return state

    def _landmarks(self, frame: Frame, t_s: float, faces: Faces) -> None:
        """FaceMesh on every face matched at this update, then its head pose, smoothed."""
        matched = [tr for tr in self.tracks if tr.det_box_xyxy is not None]
        if not matched or not len(faces):
            return
        crops, inputs = [], np.empty((len(matched), INPUT_SIDE, INPUT_SIDE, 3), np.float32)
        for i, track in enumerate(matched):
            assert track.det_box_xyxy is not None
            k = int(np.argmin(np.abs(faces.xyxy - track.det_box_xyxy).sum(axis=1)))
            marks = faces.landmarks[k]
            crop = crop_transform(track.det_box_xyxy.tolist(), marks[RIGHT_EYE].tolist(), marks[LEFT_EYE].tolist())
            self.mesh_format.preprocess(frame.image, crop, inputs[i])
            crops.append(crop)
        outputs = self.mesh.infer(inputs)
        t_mesh = time.monotonic()
        for i, track in enumerate(matched):
            mesh = self.mesh_format.decode([out[i] for out in outputs], crops[i])
            state = self._state(track.track_id)
            pose = None
            if mesh.score >= MIN_PRESENCE:
                pose = solve_head_pose(mesh.points[:, :2], self.model_points, self.k, state.pose)
            width = float(track.box_xyxy[2] - track.box_xyxy[0])
            if pose is None or pose.reprojection_error_px > MAX_REPROJECTION_SHARE * max(width, 1.0):
                continue
            if t_s <= state.last_pose_t_s:
                continue
            state.pose = pose
            state.angles_deg = state.smoother.filter(t_s, (pose.yaw_deg, pose.pitch_deg, pose.roll_deg))  # type: ignore[assignment]
            state.tvec_cm = state.position.filter(t_s, tuple(float(v) for v in pose.tvec))  # type: ignore[assignment]
            state.last_pose_t_s = t_s
        self.stats["pose_s"] += time.monotonic() - t_mesh

    def _driver(self, t_s: float) -> tuple[int | None, bool]:
        """The driver's track id in this frame and whether it is held (its face lost for at most HOLD_S)."""
        area = self.info.width * self.info.height
        shares = {
            tr.track_id: max(0.0, float((tr.box_xyxy[2] - tr.box_xyxy[0]) * (tr.box_xyxy[3] - tr.box_xyxy[1]))) / area
            for tr in self.tracks
        }
        driver = self.selector.update(self.period_s, shares)
        if driver is not None:
            self.last_driver, self.last_driver_t_s = driver, t_s
            return driver, False
        if self.last_driver is not None and t_s - self.last_driver_t_s <= HOLD_S + 1e-9:
            return self.last_driver, True
        return None, False

    def _attend(self, t_s: float, driver: int | None) -> dict[str, Any] | None:
        """Off road or not for the driver, against the neutral pose; the rules are fed either way."""
        speed = self.speed.at(t_s)
        state = self.faces.get(driver) if driver is not None else None
        record = None
        yaw_dev = pitch_dev = None
        if state is not None and state.angles_deg is not None:
            yaw, pitch, _ = state.angles_deg
            self.neutral.add(yaw, pitch, self.period_s)
            yaw0, pitch0 = self.neutral.value
            yaw_dev, pitch_dev = yaw - yaw0, pitch - pitch0
            self.off_road = self.rule.next(self.off_road, yaw_dev, pitch_dev)
            record = {"off_road": self.off_road, "yaw_dev_deg": round(yaw_dev, 2), "pitch_dev_deg": round(pitch_dev, 2)}
        elif driver is None:
            self.off_road = False
        visible = driver is not None
        self.events.update(
            Attention(t_s, visible, self.off_road and visible, speed, None if yaw_dev is None else abs(yaw_dev), driver)
        )
        angles = state.angles_deg if state is not None and state.angles_deg is not None else None
        self.series.append(t_s, (angles[0], angles[1]) if angles is not None else (None, None))
        self.counts["frames"] += 1
        self.counts["driver"] += visible
        self.counts["off_road"] += self.off_road and visible
        return record

    def _project(self, state: _FaceState) -> tuple[npt.NDArray[np.float64] | None, npt.NDArray[np.float64] | None]:
        """The head box's corners and the pose axes in pixels, from the smoothed pose."""
        if state.angles_deg is None or state.tvec_cm is None:
            return None, None
        rvec, _ = cv2.Rodrigues(rotation_from_angles(*state.angles_deg))
        tvec = np.asarray(state.tvec_cm, np.float64)
        points = np.vstack([self.box_corners, self.axes_points])
        projected, _ = cv2.projectPoints(points, rvec, tvec, self.k, None)
        xy = np.asarray(projected, np.float64).reshape(-1, 2)
        return xy[:8], xy[8:]

    def _view(self, t_s: float, driver: int | None, held: bool) -> DriverView:
        faces = []
        for track in self.tracks:
            state = self.faces[track.track_id]
            box_px, axes_px = self._project(state)
            is_driver = track.track_id == driver
            faces.append(
                FaceView(
                    track.track_id,
                    state.box_xyxy,
                    is_driver,
                    state.angles_deg,
                    box_px,
                    axes_px,
                    self.off_road if is_driver else None,
                )
            )
        end_s = t_s + self.period_s
        d = self.p["distraction"]
        return DriverView(
            t_s=t_s,
            faces=faces,
            glance_s=self.events.current_glance_s(t_s),
            window_off_s=self.events.window_total_s(end_s),
            window_s=d["short_window_s"],
            window_limit_s=d["short_total_s"],
            banners=self._banners(),
        )

    def _banners(self) -> list[str]:
        texts = {
            LONG: "DISTRACTED: EYES OFF THE ROAD",
            SHORT: "DISTRACTED: TOO LONG OFF ROAD IN 30 S",
            NOT_VISIBLE: "DRIVER NOT VISIBLE",
        }
        return [texts[kind] for kind in self.events.active()]

    def _record(
        self, frame: Frame, inferred: bool, driver: int | None, held: bool, attention: dict[str, Any] | None
    ) -> dict[str, Any]:
        faces = []
        for track in self.tracks:
            state = self.faces[track.track_id]
            pose = None
            if state.angles_deg is not None:
                yaw, pitch, roll = state.angles_deg
                pose = {"yaw_deg": round(yaw, 2), "pitch_deg": round(pitch, 2), "roll_deg": round(roll, 2)}
            faces.append(
                {
                    "track_id": track.track_id,
                    "score": round(state.score, 4),
                    "box_xyxy": [round(v, 1) for v in state.box_xyxy],
                    "head_pose": pose,
                    "off_road": self.off_road if track.track_id == driver and pose is not None else None,
                }
            )
        return {
            "index": frame.index,
            "t_s": round(frame.time_s, 6),
            "inferred": inferred,
            "driver_track_id": driver,
            "driver_held": held,
            "faces": faces,
            "attention": attention,
            "speed_mps": self.speed.at(frame.time_s),
        }

    def finish(self, video: Mapping[str, Any]) -> list[dict[str, Any]]:
        t0 = time.monotonic()
        events = self.events.finish()
        frames = max(1, self.counts["frames"])
        summary = {
            "frames": self.counts["frames"],
            "driver_track_id": self.selector.driver,
            "tracks": self.max_track_id,
            "share_driver_visible": round(self.counts["driver"] / frames, 4),
            "off_road_s": round(self.counts["off_road"] * self.period_s, 3),
            "events": {kind: sum(e["type"] == kind for e in events) for kind in (LONG, SHORT, NOT_VISIBLE)},
        }
        self.json.finish(
            {"neutral_pose": self.neutral.to_json(), "events": events, "summary": summary, "video": dict(video)}
        )
        title = (
            f"driver over {video.get('frames')} frames: head yaw and pitch; neutral pose {self.neutral.source}, "
            f"off road past {self.p['off_road']['yaw_deg']:g} deg of yaw or {self.p['off_road']['pitch_down_deg']:g} "
            f"deg down"
        )
        plot_timeline(self.timeline_part, self.series, events, self.p["off_road"], self.neutral.value, title)
        self.stats["timeline_s"] = time.monotonic() - t0
        return events

    def abort(self) -> None:
        self.json.abort()
