"""The shared staged run with several models: results in predictor order, the side thread, failures, cleanup."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framequeue.media.frames import Frame
from framequeue.media.probe import probe
from framequeue.models.formats import get_format
from framequeue.models.onnx import OnnxModel
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.base import RunContext
from framequeue.pipelines.stages import Predictor, StagedJob, run_stages
from tests.unit.synthetic import make_clip, write_tiny_yolox

pytest.importorskip("onnx", reason="the tiny test model is built with the onnx package")

OUTPUTS = {"video": "annotated.mp4", "log": "log.txt", "contact_sheet": "contact_sheet.png"}


class RecordingSink:
    """Writes one line per frame: its index and the number of results it got."""

    def __init__(self, path: Path) -> None:
        self.stats: dict[str, float] = {"sink_s": 0.0}
        self.path = path
        self.lines: list[str] = []
        self.results: list[Sequence[Any] | None] = []

    def frame(self, frame: Frame, results: Sequence[Any] | None) -> None:
        self.results.append(results)
        self.lines.append(f"{frame.index} {'-' if results is None else len(results)}")

    def finish(self, video: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.path.write_text("\n".join(self.lines) + f"\n{video['frames']}\n")
        inferred = sum(r is not None for r in self.results)
        return [{"type": "inferred", "start_s": 0.0, "end_s": 2.0, "frames": inferred}]

    def abort(self) -> None:
        pass


def stage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("twin-")]


def run(tmp_path: Path, predictors_fail: int | None = None, sample_fps: float | None = None) -> tuple[Any, Any]:
    repo = ModelRepository(tmp_path / "models")
    model_path, classes = write_tiny_yolox(tmp_path / "src")
    version = repo.add("tiny", model_path, "yolox", classes)
    clip = make_clip(tmp_path / "in.mp4", frames=40, rate=Fraction(20))
    fmt = get_format("yolox")(version.input_size_hw, len(version.classes))
    sinks: list[RecordingSink] = []

    def make_sink(parts: Mapping[str, Path]) -> RecordingSink:
        assert set(parts) == {"log"}
        sinks.append(RecordingSink(parts["log"]))
        return sinks[0]

    def decoder(k: int) -> Any:
        calls = 0

        def decode(outputs: list[Any], scale: float, image_hw: tuple[int, int]) -> Any:
            nonlocal calls
            calls += 1
            if predictors_fail == k and calls > 5:
                raise RuntimeError(f"model {k} broke")
            return (k, fmt.decode(outputs, scale, image_hw, 0.3, 0.45))

        return decode

    backends = [OnnxModel.load(version, 1), OnnxModel.load(version, 1)]
    job = StagedJob(
        name="twin",
        outputs=OUTPUTS,
        primary="log",
        predictors=[Predictor(f"m{k}", b, fmt.preprocess, decoder(k)) for k, b in enumerate(backends)],
        sink=make_sink,
        sample_fps=sample_fps,
        batch_size=3,
        encode_preset="ultrafast",
        crf=30,
    )
    ctx = RunContext(
        input_path=clip, output_dir=tmp_path / "out", params={}, models=repo, threads=2,
        on_progress=lambda p: None, stop=threading.Event(),
    )
    return run_stages(ctx, probe(clip, ctx.limits), job, time.monotonic()), sinks


def test_two_models_give_their_results_in_order_on_every_inferred_frame(tmp_path: Path) -> None:
    result, (sink,) = run(tmp_path, sample_fps=5)
    assert result.frames_total == 40 and result.frames_inferred == 10
    sampled = [r for r in sink.results if r is not None]
    assert len(sampled) == 10 and all(len(r) == 2 and r[0][0] == 0 and r[1][0] == 1 for r in sampled)
    # both models ran on the same frames, so their boxes agree
    for first, second in sampled:
        np.testing.assert_array_equal(first[1].xyxy, second[1].xyxy)
    assert {"infer_m0_s", "infer_m1_s", "infer_side_cpu_s", "sink_s"} <= set(result.stats)
    assert result.stats["infer_m1_s"] > 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(OUTPUTS.values())
    assert (tmp_path / "out" / "log.txt").read_text().splitlines()[-1] == "40"
    # the sink's events are the run's
    assert result.events == [{"type": "inferred", "start_s": 0.0, "end_s": 2.0, "frames": 10}]
    assert not stage_threads()


def test_a_failing_side_model_ends_the_run_with_its_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="model 1 broke"):
        run(tmp_path, predictors_fail=1)
    assert not stage_threads()
    assert list((tmp_path / "out").iterdir()) == []


def test_the_stages_write_the_video_and_the_contact_sheet_themselves(tmp_path: Path) -> None:
    ctx = RunContext(
        input_path=tmp_path, output_dir=tmp_path / "out", params={}, models=ModelRepository(tmp_path), threads=1,
        on_progress=lambda p: None, stop=threading.Event(),
    )
    job = StagedJob("x", {"log": "log.txt"}, "log", [], lambda parts: RecordingSink(parts["log"]), None, 1,
                    "ultrafast", 30)
    with pytest.raises(ValueError, match="contact_sheet"):
        run_stages(ctx, None, job, 0.0)  # type: ignore[arg-type]
