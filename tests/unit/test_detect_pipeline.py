"""The detect pipeline end to end in-process: outputs, carried boxes, progress, cancel, failures, params."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest

from framequeue.errors import InvalidParams, JobCancelled, UnknownModel
from framequeue.media.annotate import annotate
from framequeue.models.onnx import OnnxModel
from framequeue.models.predictions import Detections
from framequeue.models.repository import ModelRepository
from framequeue.pipelines import detect
from framequeue.pipelines.base import Progress, RunContext, RunResult
from framequeue.pipelines.detect import DetectPipeline
from tests.unit.synthetic import TINY_CLASSES, make_clip, write_tiny_yolox

pytest.importorskip("onnx", reason="the tiny test model is built with the onnx package")

NTSC = Fraction(30000, 1001)


@pytest.fixture
def repo(tmp_path: Path) -> ModelRepository:
    repo = ModelRepository(tmp_path / "models")
    repo.add("tiny", *write_tiny_yolox(tmp_path / "src")[:1], "yolox", tmp_path / "src" / "classes.txt")
    return repo


def run(
    video: Path,
    out: Path,
    repo: ModelRepository,
    params: dict[str, Any],
    on_progress: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
    threads: int = 2,
) -> RunResult:
    pipeline = DetectPipeline()
    ctx = RunContext(
        input_path=video,
        output_dir=out,
        params=pipeline.validate(params, repo),
        models=repo,
        threads=threads,
        on_progress=on_progress or (lambda p: None),
        stop=stop or threading.Event(),
    )
    return pipeline.run(ctx)


def read_video(path: Path) -> tuple[av.video.stream.VideoStream, list[Fraction]]:
    """The video stream and its frames' presentation times in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        assert tb is not None
        return stream, [int(f.pts or 0) * tb for f in container.decode(stream)]


def detect_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("detect-")]


def test_synthetic_clip_outputs(tmp_path: Path, repo: ModelRepository) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=40, size_wh=(160, 120), rate=NTSC)
    progress: list[Progress] = []
    out = tmp_path / "out"
    result = run(clip, out, repo, {"model": "tiny", "sample_fps": 5, "score_threshold": 0.3}, progress.append)

    assert result.outputs == {
        "video": "annotated.mp4",
        "detections": "detections.json",
        "contact_sheet": "contact_sheet.png",
    }
    assert sorted(p.name for p in out.iterdir()) == sorted(result.outputs.values())
    # same frame count, size, rate and timestamps as the input
    _, in_times = read_video(clip)
    out_stream, out_times = read_video(out / "annotated.mp4")
    assert (out_stream.width, out_stream.height) == (160, 120)
    assert out_stream.average_rate == NTSC
    assert out_stream.codec_context.name == "h264"
    assert len(out_times) == len(in_times) == 40
    assert out_times == in_times

    doc = json.loads((out / "detections.json").read_text())
    assert doc["pipeline"] == "detect" and doc["pipeline_version"] == "1"
    assert doc["model"] == {"name": "tiny", "version": 1}
    assert doc["video"]["fps_fraction"] == "30000/1001"
    assert doc["video"]["fps"] == pytest.approx(29.97, abs=0.01)
    assert (doc["video"]["width"], doc["video"]["height"], doc["video"]["frames"]) == (160, 120, 40)
    # 5 samples a second at 29.97 fps: the first frame at or after each k/5 s
    assert [f["frame"] for f in doc["frames"]] == [0, 6, 12, 18, 24, 30, 36]
    assert doc["frames"][1]["time_s"] == pytest.approx(6 * 1001 / 30000, abs=1e-6)
    dets = [d for f in doc["frames"] for d in f["detections"]]
    assert dets, "the tiny model at threshold 0.3 finds boxes"
    for d in dets:
        x1, y1, x2, y2 = d["xyxy"]
        assert 0 <= x1 <= x2 <= 160 and 0 <= y1 <= y2 <= 120
        assert d["class"] == TINY_CLASSES[d["class_id"]] and 0.3 <= d["score"] <= 1

    assert (result.frames_total, result.frames_inferred) == (40, 7)
    assert {"decode_s", "infer_s", "render_s", "encode_s", "first_frame_s", "wall_s"} <= set(result.stats)
    assert progress[-1] == Progress(40, 40)
    assert [p.frames_done for p in progress] == sorted(p.frames_done for p in progress)

    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape == (2 * 360, 2 * 480, 3)
    assert not detect_threads()


def test_boxes_of_a_sampled_frame_are_drawn_until_the_next(
    tmp_path: Path, repo: ModelRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[tuple[int, int]] = []

    def recording(scene: npt.NDArray[np.uint8], dets: Detections, names: Any) -> npt.NDArray[np.uint8]:
        drawn.append((len(drawn), id(dets)))
        return annotate(scene, dets, names)

    monkeypatch.setattr(detect, "annotate", recording)
    clip = make_clip(tmp_path / "in.mp4", frames=30, rate=Fraction(25))
    result = run(clip, tmp_path / "out", repo, {"model": "tiny", "sample_fps": 2, "score_threshold": 0.3})
    assert len(drawn) == result.frames_total == 30
    ids = [i for _, i in drawn]
    # sampled at 0 and 13 (0.52 s >= 0.5 s), 25 (1.0 s): each group shares its detections object
    assert len(set(ids[0:13])) == 1 and len(set(ids[13:25])) == 1 and len(set(ids[25:30])) == 1
    assert len({ids[0], ids[13], ids[25]}) == 3


def test_real_dashcam_clip(tmp_path: Path, dashcam_video: Path, yolox_dir: Path) -> None:
    repo = ModelRepository(tmp_path / "models")
    repo.add("yolox_nano", yolox_dir / "yolox_nano.onnx", "yolox", yolox_dir / "coco_classes.txt")
    out = tmp_path / "out"
    result = run(dashcam_video, out, repo, {"encode_preset": "ultrafast"})
    stream, times = read_video(out / "annotated.mp4")
    assert (len(times), stream.average_rate, stream.width, stream.height) == (221, Fraction(25), 960, 540)
    assert result.frames_total == result.frames_inferred == 221
    doc = json.loads((out / "detections.json").read_text())
    frame_100 = next(f for f in doc["frames"] if f["frame"] == 100)
    assert sum(d["class"] == "car" for d in frame_100["detections"]) >= 2


def test_stop_mid_run_cancels_within_seconds(tmp_path: Path, repo: ModelRepository) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=400, size_wh=(640, 360))
    stop = threading.Event()
    stopped_at: list[float] = []
    progress: list[Progress] = []

    def on_progress(p: Progress) -> None:
        progress.append(p)
        if p.frames_done > 0 and not stop.is_set():
            stop.set()
            stopped_at.append(time.monotonic())

    out = tmp_path / "out"
    with pytest.raises(JobCancelled):
        run(clip, out, repo, {"model": "tiny", "encode_preset": "slow"}, on_progress, stop)
    assert stopped_at, "the run ended before it could be stopped"
    assert time.monotonic() - stopped_at[0] < 2.0
    assert progress[-1].frames_done < 400
    assert list(out.iterdir()) == []
    assert not detect_threads()


def test_stop_before_start(tmp_path: Path, repo: ModelRepository) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=10)
    stop = threading.Event()
    stop.set()
    with pytest.raises(JobCancelled):
        run(clip, tmp_path / "out", repo, {"model": "tiny"}, stop=stop)


@pytest.mark.parametrize("stage", ["annotate", "infer"])
def test_a_failing_stage_ends_the_run_with_its_error(
    tmp_path: Path, repo: ModelRepository, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    calls = 0

    def boom(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise RuntimeError(f"{stage} broke")
        return real(*args, **kwargs)

    real: Callable[..., Any] = annotate if stage == "annotate" else OnnxModel.infer
    if stage == "annotate":
        monkeypatch.setattr(detect, "annotate", boom)
    else:
        monkeypatch.setattr(OnnxModel, "infer", boom)
    # queues are small and the video long, so the upstream stages are blocked on full queues when it fails
    clip = make_clip(tmp_path / "in.mp4", frames=200)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=f"{stage} broke"):
        run(clip, tmp_path / "out", repo, {"model": "tiny", "batch_size": 1})
    assert time.monotonic() - started < 10
    assert not detect_threads()
    assert list((tmp_path / "out").iterdir()) == []


def test_validate_fills_defaults_and_pins_the_version(repo: ModelRepository) -> None:
    pipeline = DetectPipeline()
    params = pipeline.validate({"model": "tiny"}, repo)
    assert params == {**detect.DEFAULTS, "model": "tiny", "model_version": 1}
    assert pipeline.validate(params, repo) == params
    repo.add("tiny", repo.get("tiny").model_path, "yolox", repo.root.parent / "src" / "classes.txt")
    assert pipeline.validate({"model": "tiny"}, repo)["model_version"] == 2
    assert pipeline.validate(params, repo)["model_version"] == 1
    classes = pipeline.validate({"model": "tiny", "classes": ["person", "person"], "sample_fps": 2}, repo)
    assert classes["classes"] == ["person"] and classes["sample_fps"] == 2.0


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"sample_fps": 0}, "sample_fps"),
        ({"sample_fps": "5"}, "sample_fps"),
        ({"sample_fps": float("nan")}, "sample_fps"),
        ({"score_threshold": 1.5}, "score_threshold"),
        ({"score_threshold": True}, "score_threshold"),
        ({"nms_iou": -0.1}, "nms_iou"),
        ({"classes": ["zebra"]}, "classes"),
        ({"classes": []}, "classes"),
        ({"classes": "car"}, "classes"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 33}, "batch_size"),
        ({"batch_size": 2.0}, "batch_size"),
        ({"encode_preset": "warp"}, "encode_preset"),
        ({"crf": 52}, "crf"),
        ({"model_version": 0}, "model_version"),
        ({"model_version": "1"}, "model_version"),
        ({"model": 3}, "model"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_validate_names_the_bad_field(repo: ModelRepository, bad: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams, match=f"^{field}: "):
        DetectPipeline().validate({"model": "tiny", **bad}, repo)


def test_validate_unknown_model(repo: ModelRepository) -> None:
    with pytest.raises(UnknownModel, match="tiny"):
        DetectPipeline().validate({"model": "yolox_nano"}, repo)
    with pytest.raises(UnknownModel, match="no version 4"):
        DetectPipeline().validate({"model": "tiny", "model_version": 4}, repo)
