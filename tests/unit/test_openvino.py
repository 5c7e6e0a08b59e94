"""OpenVINO runtime: same detections as ONNX Runtime on a real frame, bf16 checked or fallen back, the
accuracy check refusing, and the factory and serve-models' runner following the config."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import yaml

from framequeue.errors import InvalidParams
from framequeue.models import accuracy
from framequeue.models.formats import get_format
from framequeue.models.onnx import OnnxModel
from framequeue.models.repository import ModelRepository
from framequeue.models.runtimes import load_backend
from framequeue.models.serving import ServingConfig
from framequeue.models.version import ModelVersion
from tests.conftest import require_shared


def test_serving_config_runtime_and_precision() -> None:
    assert ServingConfig.parse({}) == ServingConfig()
    assert (ServingConfig().runtime, ServingConfig().precision) == ("onnxruntime", "fp32")
    config = ServingConfig.parse({"runtime": "openvino", "precision": "bf16"})
    assert (config.runtime, config.precision) == ("openvino", "bf16")
    assert ServingConfig.parse(config.to_yaml()) == config
    with pytest.raises(ValueError, match="needs runtime openvino"):
        ServingConfig(precision="bf16")
    with pytest.raises(ValueError, match="runtime: 'tensorrt'"):
        ServingConfig.parse({"runtime": "tensorrt"})


@pytest.fixture
def ov() -> object:
    return pytest.importorskip("openvino", reason="pip install 'framequeue[openvino]'")


@pytest.fixture
def frame() -> npt.NDArray[np.uint8]:
    image = cv2.imread(str(require_shared("media", "stills", "solidWhiteRight.jpg")), cv2.IMREAD_COLOR)
    assert image is not None
    return image.astype(np.uint8)


def _add(
    tmp_path: Path, frame: npt.NDArray[np.uint8] | None, runtime: str = "openvino", precision: str = "fp32"
) -> ModelVersion:
    folder = require_shared("models", "yolox_nano")
    return ModelRepository(tmp_path / "models").add(
        "yolox", folder / "yolox_nano.onnx", "yolox", folder / "coco_classes.txt",
        serving=ServingConfig(runtime=runtime, precision=precision), check_image=frame,
    )


def _detect(version: ModelVersion, frame: npt.NDArray[np.uint8], batch_size: int = 1) -> list[object]:
    fmt = get_format(version.format)(version.input_size_hw, len(version.classes))
    batch = np.zeros((batch_size, 3, *version.input_size_hw), np.float32)
    scale = fmt.preprocess(frame, batch[0])
    batch[1:] = batch[0]
    model = load_backend(version, threads=1)
    try:
        outputs = model.infer(batch)
    finally:
        model.close()
    return [fmt.decode([o[i] for o in outputs], scale, frame.shape[:2], 0.3, 0.45) for i in range(batch_size)]


@pytest.mark.usefixtures("ov")
def test_yolox_fp32_gives_the_same_detections_as_onnxruntime(tmp_path: Path, frame: npt.NDArray[np.uint8]) -> None:
    version = _add(tmp_path, frame)
    assert type(load_backend(version, 1)).__name__ == "OpenVinoModel"
    reference = dataclasses.replace(version, serving=ServingConfig())
    (expected,) = _detect(reference, frame)
    got = _detect(version, frame, batch_size=4)  # a dynamic batch: four rows, four equal results
    assert len(expected) >= 3  # type: ignore[arg-type]
    for detections in got:
        np.testing.assert_array_equal(detections.class_id, expected.class_id)  # type: ignore[attr-defined]
        np.testing.assert_allclose(detections.xyxy, expected.xyxy, atol=0.05)  # type: ignore[attr-defined]
        np.testing.assert_allclose(detections.score, expected.score, atol=1e-3)  # type: ignore[attr-defined]
    check = yaml.safe_load((version.path / "config.yaml").read_text())["accuracy_check"]
    assert check["precision"] == "fp32" and check["input"] == "image"
    assert check["max_abs_error"] < 1e-2 and check["min_box_iou"] > 0.99 and check["boxes_matched"] >= 2


@pytest.mark.usefixtures("ov")
def test_bf16_within_tolerance_or_falls_back(tmp_path: Path, frame: npt.NDArray[np.uint8]) -> None:
    import openvino

    from framequeue.models.openvino import OpenVinoModel, bf16_supported

    version = _add(tmp_path, frame, precision="bf16")
    assert version.serving.precision == "bf16"  # the operator's wish stays in the config
    check = yaml.safe_load((version.path / "config.yaml").read_text())["accuracy_check"]
    model = load_backend(version, threads=1)
    assert isinstance(model, OpenVinoModel)
    if bf16_supported(openvino.Core()):
        assert model.precision == check["precision"] == "bf16"
        assert check["min_box_iou"] >= accuracy.MIN_BOX_IOU and check["boxes_matched"] >= 2
        assert check["max_abs_error"] > 1e-3  # really ran bf16: not bit-close to fp32
    else:
        assert model.precision == check["precision"] == "fp32"


@pytest.mark.usefixtures("ov")
def test_bf16_falls_back_to_fp32_without_cpu_support(
    tmp_path: Path, frame: npt.NDArray[np.uint8], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from framequeue.models import openvino as ov_module

    monkeypatch.setattr(ov_module, "bf16_supported", lambda core: False)
    with caplog.at_level(logging.WARNING, logger="framequeue.models.openvino"):
        version = _add(tmp_path, frame, precision="bf16")
    assert "running fp32 instead" in caplog.text
    check = yaml.safe_load((version.path / "config.yaml").read_text())["accuracy_check"]
    assert check["precision"] == "fp32" and check["max_abs_error"] < 1e-2


@pytest.mark.usefixtures("ov")
def test_accuracy_check_refuses_and_names_the_deviation(
    tmp_path: Path, frame: npt.NDArray[np.uint8], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(accuracy, "MIN_BOX_IOU", 1.01)  # nothing can pass
    with pytest.raises(InvalidParams, match=r"differs from ONNX Runtime fp32.*max abs error .*min IoU"):
        _add(tmp_path, frame)
    assert not (tmp_path / "models" / "yolox" / "1").exists()


@pytest.mark.usefixtures("ov")
def test_factory_follows_the_config_file(tmp_path: Path, frame: npt.NDArray[np.uint8]) -> None:
    from framequeue.inference.runner import OnnxRunner
    from framequeue.models.openvino import OpenVinoModel

    repo = ModelRepository(tmp_path / "models")
    plain = _add(tmp_path, None, runtime="onnxruntime")
    assert isinstance(load_backend(plain, 1), OnnxModel)
    assert "accuracy_check" not in yaml.safe_load((plain.path / "config.yaml").read_text())
    config_path = plain.path / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["runtime"] = "openvino"  # an operator switching runtime by hand
    config_path.write_text(yaml.safe_dump(config))
    switched = repo.get("yolox", plain.version)
    assert isinstance(load_backend(switched, 1), OpenVinoModel)

    # serve-models' runner: same names, same specs, same numbers
    fmt = get_format("yolox")(switched.input_size_hw, 80)
    batch = np.zeros((2, 3, *switched.input_size_hw), np.float32)
    fmt.preprocess(frame, batch[0])
    by_ov, by_ort = OnnxRunner(switched), OnnxRunner(plain)
    assert by_ov.providers[0].startswith("OpenVINO")
    assert (by_ov.inputs, by_ov.outputs) == (by_ort.inputs, by_ort.outputs)
    a, b = by_ov.run({"images": batch}), by_ort.run({"images": batch})
    assert a.keys() == b.keys() and np.abs(a["output"] - b["output"]).max() < 1e-2


@pytest.mark.usefixtures("ov")
def test_synthetic_pattern_is_used_without_a_frame(tmp_path: Path) -> None:
    version = _add(tmp_path, None)
    check = yaml.safe_load((version.path / "config.yaml").read_text())["accuracy_check"]
    assert check["input"] == "synthetic pattern" and check["relative_rms"] < 1e-3
    np.testing.assert_array_equal(accuracy.check_pattern(), accuracy.check_pattern())
