"""FaceMesh: the crop transform round-trips, and the real model on the head-pose clip puts 468 points
inside each face YuNet finds, with a high presence score; a crop of background scores low."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from framequeue.errors import InvalidParams
from framequeue.models.formats import get_result_format
from framequeue.models.formats.facemesh import CROP_SCALE, INPUT_SIDE, FacemeshFormat, crop_transform
from framequeue.models.onnx import create_session
from tests.conftest import require_shared


def test_crop_transform_levels_the_eyes_and_inverts() -> None:
    # a face tilted by 30 degrees: eyes at its centre +-(cos, sin) * 20 px
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    right, left = (100 - 20 * c, 100 - 20 * s), (100 + 20 * c, 100 + 20 * s)
    crop = crop_transform((60, 60, 140, 140), right, left)
    eyes = np.array([right, left]) @ crop.image_to_crop[:, :2].T + crop.image_to_crop[:, 2]
    assert eyes[0, 1] == pytest.approx(eyes[1, 1]) and eyes[0, 0] < eyes[1, 0]  # level, right eye first
    assert crop.scale == pytest.approx(80 * CROP_SCALE / INPUT_SIDE)
    np.testing.assert_allclose(eyes.mean(axis=0), [INPUT_SIDE / 2] * 2)
    # decode maps crop pixels back: the crop's eye positions come back as the image's
    raw = np.zeros(468 * 3, np.float32)
    raw[:6] = [eyes[0, 0], eyes[0, 1], 0, eyes[1, 0], eyes[1, 1], 0]
    mesh = FacemeshFormat().decode([raw, np.array([3.0], np.float32)], crop)
    np.testing.assert_allclose(mesh.points[:2, :2], [right, left], atol=1e-3)
    assert mesh.score == pytest.approx(1 / (1 + np.exp(-3.0)))
    with pytest.raises(InvalidParams, match="1404 landmark values"):
        FacemeshFormat().check_outputs([(1, 1, 1, 1400), (1, 1, 1, 1)])


def test_real_model_on_the_head_pose_clip() -> None:
    pytest.importorskip("ai_edge_litert", reason="pip install 'framequeue[tflite]'")
    from framequeue.models.tflite import TfliteModel

    clip = require_shared("media", "head-pose-face-detection-female-and-male.gif")
    yunet = require_shared("models", "yunet", "yunet_s_640_640.onnx")
    mesh_model = TfliteModel(require_shared("models", "mediapipe", "face_landmark.tflite"))
    with av.open(str(clip)) as container:
        image = next(f for i, f in enumerate(container.decode(video=0)) if i == 10).to_ndarray(format="bgr24")
    session = create_session(Path(yunet), threads=1, log_severity=3)
    detector = get_result_format("yunet")((640, 640), 1)
    batch = np.empty((1, 3, 640, 640), np.float32)
    scale = detector.preprocess(image, batch[0])
    faces = detector.decode([o[0] for o in session.run(None, {"input": batch})], scale, image.shape[:2], 0.6)
    assert len(faces) == 2

    fmt = FacemeshFormat()
    fmt.check_outputs([tuple(int(d) for d in o["shape"]) for o in mesh_model._outputs])
    crops = [crop_transform(box, marks[0], marks[1]) for box, marks in zip(faces.xyxy, faces.landmarks, strict=True)]
    # a crop of the same size in the frame's top-left corner, where there is no face
    (x1, y1, x2, y2) = faces.xyxy[0]
    crops.append(crop_transform((0, 0, x2 - x1, y2 - y1), (0, 0), (1, 0)))
    inputs = np.empty((len(crops), INPUT_SIDE, INPUT_SIDE, 3), np.float32)
    for crop, row in zip(crops, inputs, strict=True):
        fmt.preprocess(image, crop, row)
    outputs = mesh_model.infer(inputs)
    meshes = [fmt.decode([o[i] for o in outputs], crop) for i, crop in enumerate(crops)]

    for box, mesh in zip(faces.xyxy, meshes[:2], strict=True):
        assert mesh.points.shape == (468, 3) and mesh.score > 0.9
        centre, half = (box[:2] + box[2:]) / 2, CROP_SCALE * (box[2:] - box[:2]).max() / 2
        xy = mesh.points[:, :2]
        assert (np.abs(xy - centre) <= half).all()  # inside the expanded box
        # most of the mesh lies on the face box itself, not only in the margin
        assert ((xy >= box[:2] - 5) & (xy <= box[2:] + 5)).all(axis=1).mean() > 0.9
    assert meshes[2].score < 0.5
