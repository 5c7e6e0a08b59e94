"""LSTR decoding: the curve formula on a synthetic query, and the real model on a highway frame."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from framequeue.models.formats import get_result_format
from framequeue.models.formats.lstr import LstrFormat
from framequeue.models.onnx import create_session
from tests.conftest import require_shared


def test_straight_synthetic_lane_and_class_threshold() -> None:
    logits = np.asarray([[0.0, 5.0]] + [[5.0, 0.0]] * 6, np.float32)
    curves = np.zeros((7, 8), np.float32)
    # k = m = 0: x = n + b*y - b' = 0.2 + 0.5*y - 0.1, y from 0.5 to 1.0
    curves[0] = (0.5, 1.0, 0.0, 2.0, 0.0, 0.2, 0.5, 0.1)
    lanes = LstrFormat().decode([logits, curves], (1.0, 1.0), (500, 1000), 0.5)
    assert len(lanes) == 1 and lanes.score[0] > 0.99
    line = lanes.polylines[0]
    np.testing.assert_allclose(line[0], [350, 250], atol=1e-3)
    np.testing.assert_allclose(line[:, 0], (0.1 + 0.5 * line[:, 1] / 500) * 1000, atol=1e-2)
    assert line[-1, 1] < 500  # the point on the bottom edge (y = 500) lies outside the image


def test_real_model_finds_highway_lanes() -> None:
    video = require_shared("media", "solidWhiteRight.mp4")
    model = require_shared("models", "lstr", "lstr_360x640.onnx")
    with av.open(str(video)) as container:
        image = next(f for i, f in enumerate(container.decode(video=0)) if i == 60).to_ndarray(format="bgr24")
    session = create_session(Path(model), threads=1, log_severity=3)
    fmt = get_result_format("lstr")((360, 640), 1)
    fmt.check_outputs([o.shape for o in session.get_outputs()])
    batch = np.empty((1, 3, 360, 640), np.float32)
    scale = fmt.preprocess(image, batch[0])
    outputs = session.run(None, {"input_rgb": batch, "input_mask": np.zeros((1, 1, 360, 640), np.float32)})
    lanes = fmt.decode([o[0] for o in outputs], scale, image.shape[:2], 0.5)
    assert len(lanes) >= 2
    height, width = image.shape[:2]
    bottoms = []
    for line in lanes.polylines:
        assert len(line) >= 10
        assert ((line >= 0) & (line < [width, height])).all()
        bottoms.append(line[np.argmax(line[:, 1]), 0])
    # one lane line left of the car's centre, one right of it
    assert min(bottoms) < width / 2 < max(bottoms)
