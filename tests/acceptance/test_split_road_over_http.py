"""A `road` job split across two workers (issue 17): real `framequeue` processes over HTTP. A constructed
30 s scene (tests/roadgen: a real car's rear pasted into the ego lane of a real road, nearing and falling
back, after a car in the next lane that leaves in the first segment, so the lead's id differs from the id the
later segments give it; 2 s GOP), run split into 10 s segments and run whole: the same frames with the same
tracked vehicles, lanes and lead on every one (boxes within a pixel: a track born in a lead-in has a shorter
filter history), track ids that name each vehicle once across the segment boundaries (the same ids as the
whole run's, up to naming), each event once (a following-too-close interval crossing a boundary is one
event), and one output set of the same form, without the segments' own overlap files."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import pytest

from framequeue.pipelines.join import iou
from tests.acceptance.deployment import Deployment
from tests.conftest import require_shared
from tests.roadgen import CAR_BOX_XYXY, CAR_FRAME, ROAD_FRAME, Scene, paste, read_frames

pytestmark = pytest.mark.slow

SECONDS = 30.0
SEGMENT_S = 10.0
FPS = 10
#: 27 m/s and the two-second rule: the lead is followed too close across both boundaries
PARAMS: dict[str, Any] = {"speed_mps": 27, "following": {"profile": "two_second_rule"}}
#: boxes and the numbers made from them may differ this much between the runs (pixels, metres, seconds)
TOLERANCE = 1.0


def lead_distance_m(t_s: float) -> float:
    """40 m, nearing at 3 m/s from 6 s to 14 s (16 m), held, falling back to 40 m from 18 s to 26 s."""
    if t_s < 6.0:
        return 40.0
    if t_s < 14.0:
        return 40.0 - 3.0 * (t_s - 6.0)
    if t_s < 18.0:
        return 16.0
    return min(40.0, 16.0 + 3.0 * (t_s - 18.0))


#: the car in the next lane: shown until this time, seconds; the lead appears after it, from LEAD_FROM_S
NEIGHBOUR_UNTIL_S = 4.0
LEAD_FROM_S = 1.0
#: where the neighbour's rear is pasted on the 960x540 road frame (x1, y1, x2, y2)
NEIGHBOUR_BOX_XYXY = (250, 318, 350, 372)


@pytest.fixture(scope="module")
def road_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "road.mp4"
    frames = read_frames(require_shared("media", "solidWhiteRight.mp4"), {ROAD_FRAME, CAR_FRAME})
    x1, y1, x2, y2 = CAR_BOX_XYXY
    car = frames[CAR_FRAME][y1:y2, x1:x2].copy()
    n1, m1, n2, m2 = NEIGHBOUR_BOX_XYXY
    neighbour = cv2.resize(car, (n2 - n1, m2 - m1), interpolation=cv2.INTER_AREA)
    scene = Scene(1400.0, 1.2, 1.8, FPS)
    with av.open(str(path), "w", format="mp4") as out:
        gop = str(2 * FPS)
        stream = out.add_stream("libx264", rate=Fraction(FPS), options={
            "crf": "18", "preset": "veryfast", "g": gop, "keyint_min": gop, "sc_threshold": "0", "bf": "0"})
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for k in range(round(SECONDS * FPS)):
            t_s = k / FPS
            image = frames[ROAD_FRAME].copy()
            if t_s >= LEAD_FROM_S:
                image, _ = paste(image, car, scene, lead_distance_m(t_s))
            if t_s < NEIGHBOUR_UNTIL_S:
                image[m1:m2, n1:n2] = neighbour
            small = cv2.resize(image, (640, 360), interpolation=cv2.INTER_AREA)
            for packet in stream.encode(av.VideoFrame.from_ndarray(small, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def splitting(tmp_path_factory: pytest.TempPathFactory, yolox_model_dir: Path) -> Iterator[Deployment]:
    """`framequeue up` with two workers, YOLOX-nano and LSTR, told that two workers share a long video."""
    dep = Deployment(tmp_path_factory.mktemp("split-road"), lease_s=20, heartbeat_s=2, reap_interval_s=1, drain_s=2,
                     split_workers=2, segment_s=SEGMENT_S, republish_after_s=2)
    dep.register_yolox(yolox_model_dir)
    dep.register_lstr(require_shared("models", "lstr"))
    dep.start("up", "up", "--workers", "2")
    dep.wait_ready()
    yield dep
    dep.stop()


def road_of(dep: Deployment, job_id: str, tmp: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(dep.client.download(job_id, "road", tmp / job_id).read_text())
    return doc


def video_frames(dep: Deployment, job_id: str, tmp: Path) -> int:
    path = dep.client.download(job_id, "video", tmp / f"{job_id}-video")
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def without_ids(frame: dict[str, Any]) -> dict[str, Any]:
    """A frame record without its track ids, its tracks in box order (the tracker lists them by id)."""
    tracks = [{k: v for k, v in t.items() if k != "id"} for t in frame["tracks"]]
    out = dict(frame, tracks=sorted(tracks, key=lambda t: (t["class"], t["box_xyxy"])))
    if out["lead"] is not None:
        out["lead"] = {k: v for k, v in out["lead"].items() if k != "track_id"}
    return out


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where `a` and `b` differ: numbers by more than TOLERANCE, anything else at all."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in differences(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{where}[{i}]")]
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return [] if abs(a - b) <= TOLERANCE else [f"{where}: {a} != {b}"]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def id_pairs(whole: list[dict[str, Any]], split: list[dict[str, Any]]) -> dict[int, set[int]]:
    """Whole-run id -> the split run's ids given to the same box (IoU >= 0.9) on any frame."""
    pairs: dict[int, set[int]] = defaultdict(set)
    for a, b in zip(whole, split, strict=True):
        for ta in a["tracks"]:
            for tb in b["tracks"]:
                if ta["class"] == tb["class"] and iou(ta["box_xyxy"], tb["box_xyxy"]) >= 0.9:
                    pairs[ta["id"]].add(tb["id"])
    return pairs


def test_a_split_road_run_equals_the_whole_run(splitting: Deployment, road_clip: Path, tmp_path: Path) -> None:
    whole = splitting.submit_file(road_clip, {**PARAMS, "split": False}, pipeline="road")
    split = splitting.submit_file(road_clip, {**PARAMS, "split": True}, pipeline="road")
    split_record = splitting.wait_done(split["id"], timeout_s=600)
    whole_record = splitting.wait_done(whole["id"], timeout_s=600)
    assert whole_record["status"] == "succeeded", whole_record
    assert split_record["status"] == "succeeded", (split_record, splitting.log("up")[-4000:])
    n = round(SECONDS / SEGMENT_S)
    assert split_record["segments_total"] == n and split_record["segments_done"] == n
    # one output set of an unsplit job's form: the segments' overlap files stay theirs
    assert set(split_record["outputs"]) == set(whole_record["outputs"]) == {"video", "road", "contact_sheet",
                                                                            "timeline"}

    a, b = road_of(splitting, whole["id"], tmp_path), road_of(splitting, split["id"], tmp_path)
    frames = round(SECONDS * FPS)
    assert len(a["frames"]) == len(b["frames"]) == frames
    assert video_frames(splitting, split["id"], tmp_path) == frames
    assert [f["index"] for f in b["frames"]] == list(range(frames))
    assert b["video"]["frames"] == a["video"]["frames"] == frames
    # every frame: the same tracked vehicles, lanes, lead and its numbers (ids aside, checked below)
    diff = differences([without_ids(f) for f in a["frames"]], [without_ids(f) for f in b["frames"]])
    assert not diff, diff[:10]
    assert sum(f["lead"] is not None for f in b["frames"]) > 0.8 * frames

    # track ids: each vehicle of the whole run has one id in the split run, across every boundary, and no
    # two vehicles share one
    pairs = id_pairs(a["frames"], b["frames"])
    assert pairs and all(len(ids) == 1 for ids in pairs.values()), dict(pairs)
    split_ids = [next(iter(ids)) for ids in pairs.values()]
    assert len(split_ids) == len(set(split_ids))
    # the lead: one id through the video, not the 1 its later segments gave it by themselves
    leads = {f["lead"]["track_id"] for f in b["frames"] if f["lead"] is not None}
    assert len(leads) == 1 and leads != {1}, leads
    boundaries = [round(k * SEGMENT_S * FPS) for k in range(1, n)]
    for first in boundaries:
        before = {t["id"] for t in b["frames"][first - 1]["tracks"]}
        after = {t["id"] for t in b["frames"][first]["tracks"]}
        assert before & after, f"no vehicle keeps its id across frame {first}"
    assert b["summary"] == a["summary"]

    # events: each once, the same as the whole run's (their track ids named as the split run names them), one
    # of them across a boundary
    named = {whole_id: next(iter(ids)) for whole_id, ids in pairs.items()}
    renamed = [dict(e, lead_track_id=named[e["lead_track_id"]],
                    lead_track_ids=sorted(named[i] for i in e["lead_track_ids"])) for e in a["events"]]
    assert not differences(renamed, b["events"]), (renamed, b["events"])
    assert b["events"] == split_record["events"]
    assert split_record["events_total"] == whole_record["events_total"] == len(a["events"])
    crossing = [e for e in b["events"] if any(e["start_s"] < k / FPS < e["end_s"] for k in boundaries)]
    assert crossing, b["events"]
