"""Synthetic inputs for the media/model unit tests: small clips made with PyAV, a tiny YOLOX-shaped model.

The tiny model keeps YOLOX's structure where it matters (three stride heads, reshape to [1, C, -1]
with a hard-coded 1, concat, transpose), so the batch rewrite and the decoder are exercised without
the real weights.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

#: classes of the tiny model
TINY_CLASSES = ("car", "person")
#: input side of the tiny model; anchors: (32/8)^2 + (32/16)^2 + 1 = 21
TINY_SIZE = 32


def make_clip(
    path: Path,
    frames: int = 30,
    size_wh: tuple[int, int] = (160, 120),
    rate: Fraction = Fraction(25),
    faststart: bool = False,
    container: str = "mp4",
) -> Path:
    """A clip (H.264 MP4 by default) with a bright box moving over a gradient.

    `faststart` puts an MP4's index first; `container` "gif" makes an animated GIF, others keep H.264.
    """
    width, height = size_wh
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format=container, options=options) as out:
        if container == "gif":
            stream = out.add_stream("gif", rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "rgb8"
        else:
            stream = out.add_stream("libx264", rate=rate, options={"preset": "ultrafast", "g": "12"})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        ramp = np.linspace(0, 255, width, dtype=np.uint8)
        for i in range(frames):
            img = np.empty((height, width, 3), np.uint8)
            img[:] = ramp[None, :, None]
            x = (i * 5) % max(1, width - width // 4)
            img[height // 3 : height // 3 + height // 4, x : x + width // 4] = (40, 40, 230)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_audio_only(path: Path) -> Path:
    """An MP4 holding one AAC stream and no video."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        samples = np.zeros((1, 1024), np.float32)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_tiny_yolox(folder: Path, shape_from_constant: bool = False) -> tuple[Path, Path]:
    """(model.onnx, classes.txt) of a random-weight YOLOX-shaped model with a 1x3x32x32 input.

    `shape_from_constant` feeds the reshapes from Constant nodes, which the batch rewrite does not
    touch: such a model must fall back to batch-1 calls.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    columns = 5 + len(TINY_CLASSES)
    nodes, inits, heads = [], [], []
    shape = np.asarray([1, columns, -1], np.int64)
    for stride in (8, 16, 32):
        w = rng.normal(0, 0.002, (columns, 3, stride, stride)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{stride}"))
        nodes.append(
            helper.make_node("Conv", ["images", f"w{stride}"], [f"c{stride}"], strides=[stride, stride])
        )
        if shape_from_constant:
            tensor = numpy_helper.from_array(shape, f"s{stride}")
            nodes.append(helper.make_node("Constant", [], [f"s{stride}"], value=tensor))
        else:
            inits.append(numpy_helper.from_array(shape, f"s{stride}"))
        nodes.append(helper.make_node("Reshape", [f"c{stride}", f"s{stride}"], [f"r{stride}"]))
        heads.append(f"r{stride}")
    nodes += [
        helper.make_node("Concat", heads, ["cat"], axis=2),
        helper.make_node("Transpose", ["cat"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Sigmoid", ["t"], ["output"]),
    ]
    anchors = sum((TINY_SIZE // s) ** 2 for s in (8, 16, 32))
    graph = helper.make_graph(
        nodes,
        "tiny_yolox",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, TINY_SIZE, TINY_SIZE])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, anchors, columns])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    folder.mkdir(parents=True, exist_ok=True)
    model_path, classes_path = folder / "tiny.onnx", folder / "classes.txt"
    onnx.save(model, str(model_path))
    classes_path.write_text("\n".join(TINY_CLASSES) + "\n")
    return model_path, classes_path
