"""YuNet decoding: one synthetic face at a known cell, and the real model on the head-pose clip."""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest

from framequeue.errors import InvalidParams
from framequeue.models.formats import get_format, get_result_format
from framequeue.models.formats.yunet import YunetFormat
from framequeue.models.onnx import create_session
from tests.conftest import require_shared

SIZE_HW = (640, 640)


def test_synthetic_face_decodes_and_scales_back() -> None:
    cells = [(640 // s) ** 2 for s in (8, 16, 32)]
    outputs = [np.zeros((n, c), np.float32) for c in (1, 1, 4, 10) for n in cells]
    row = 5 * 40 + 10  # stride-16 cell (10, 5)
    outputs[1][row, 0] = 0.81  # cls
    outputs[4][row, 0] = 1.0  # obj: score sqrt(0.81) = 0.9
    outputs[7][row] = (0.5, 0.25, math.log(4), math.log(2))  # centre (168, 84), size 64x32
    outputs[10][row] = np.tile([0.0, 0.5], 5)  # every keypoint at (160, 88)
    faces = YunetFormat(SIZE_HW).decode(outputs, (0.5, 0.5), (1280, 1280), 0.5)
    assert faces.score.tolist() == pytest.approx([0.9])
    np.testing.assert_allclose(faces.xyxy, [[272, 136, 400, 200]], atol=1e-3)
    np.testing.assert_allclose(faces.landmarks[0], [[320, 176]] * 5, atol=1e-3)
    assert len(YunetFormat(SIZE_HW).decode(outputs, (1.0, 1.0), SIZE_HW, 0.95)) == 0


def test_registry() -> None:
    with pytest.raises(InvalidParams, match="faces or lanes"):
        get_format("yunet")
    with pytest.raises(InvalidParams, match="divisible by 32"):
        YunetFormat((100, 100))


def test_real_model_finds_both_faces() -> None:
    clip = require_shared("media", "head-pose-face-detection-female-and-male.gif")
    model = require_shared("models", "yunet", "yunet_s_640_640.onnx")
    with av.open(str(clip)) as container:
        image = next(f for i, f in enumerate(container.decode(video=0)) if i == 10).to_ndarray(format="bgr24")
    session = create_session(Path(model), threads=1, log_severity=3)
    fmt = get_result_format("yunet")(SIZE_HW, 1)
    fmt.check_outputs([o.shape for o in session.get_outputs()])
    batch = np.empty((1, 3, *SIZE_HW), np.float32)
    scale = fmt.preprocess(image, batch[0])
    faces = fmt.decode([o[0] for o in session.run(None, {"input": batch})], scale, image.shape[:2], 0.6)
    assert len(faces) == 2  # the woman and the man
    assert sorted(faces.xyxy[:, 0].tolist())[0] < 240 < sorted(faces.xyxy[:, 0].tolist())[1]
    for box, points in zip(faces.xyxy, faces.landmarks, strict=True):
        assert 30 <= box[2] - box[0] <= 150
        assert ((points >= box[:2]) & (points <= box[2:])).all()
