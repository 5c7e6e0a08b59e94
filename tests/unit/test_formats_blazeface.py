"""BlazeFace decoding: anchors, one synthetic face, and the real ONNX model on the head-pose clip."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from framequeue.models.formats import get_result_format
from framequeue.models.formats.blazeface import BlazefaceFormat, make_anchors
from framequeue.models.onnx import create_session
from tests.conftest import require_shared


def test_anchors() -> None:
    anchors = make_anchors()
    assert anchors.shape == (896, 2)
    np.testing.assert_allclose(anchors[:3], [[1 / 32, 1 / 32]] * 2 + [[3 / 32, 1 / 32]])
    np.testing.assert_allclose(anchors[512:519], [[1 / 16, 1 / 16]] * 6 + [[3 / 16, 1 / 16]])


def test_synthetic_face_decodes() -> None:
    regressors = np.zeros((896, 16), np.float32)
    logits = np.full((896, 1), -10.0, np.float32)
    row = 512 + 6 * (8 * 3 + 4)  # 8x8 cell (4, 3): anchor centre (72, 56) px
    regressors[row, :4] = (2, -4, 40, 20)
    regressors[row, 4:] = np.tile([1.0, 1.0], 6)
    logits[row] = 2.0
    faces = BlazefaceFormat().decode([regressors, logits], (0.5, 0.5), (256, 256), 0.5)
    assert faces.score.tolist() == pytest.approx([1 / (1 + np.exp(-2))])
    np.testing.assert_allclose(faces.xyxy, [[108, 84, 188, 124]], atol=1e-3)
    np.testing.assert_allclose(faces.landmarks[0], [[146, 114]] * 6, atol=1e-3)


def test_real_model_finds_both_faces() -> None:
    clip = require_shared("media", "head-pose-face-detection-female-and-male.gif")
    model = require_shared("models", "mediapipe", "face_detection_short_range.onnx")
    with av.open(str(clip)) as container:
        image = next(f for i, f in enumerate(container.decode(video=0)) if i == 10).to_ndarray(format="bgr24")
    session = create_session(Path(model), threads=1, log_severity=3)
    fmt = get_result_format("blazeface")((128, 128), 1)
    fmt.check_outputs([o.shape for o in session.get_outputs()])
    batch = np.empty((1, 3, 128, 128), np.float32)
    scale = fmt.preprocess(image, batch[0])
    faces = fmt.decode([o[0] for o in session.run(None, {"input": batch})], scale, image.shape[:2], 0.5)
    assert len(faces) == 2
    for box, points in zip(faces.xyxy, faces.landmarks, strict=True):
        assert 30 <= box[2] - box[0] <= 150
        eyes_nose_mouth = points[:4]  # the ear points may lie outside a turned face's box
        assert ((eyes_nose_mouth >= box[:2]) & (eyes_nose_mouth <= box[2:])).all()
