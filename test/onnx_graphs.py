"""Build small real ONNX graphs whose outputs are known, for decoder tests.

Each output = constant + 0 * mean(input): onnxruntime really runs the graph on the real
preprocessed input, and the values that come out are exactly the constants we chose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_TYPES = {np.dtype("float32"): TensorProto.FLOAT, np.dtype("int64"): TensorProto.INT64}


def constant_output_model(path: Path, outputs: dict[str, np.ndarray], input_shape=(1, 3, 640, 640),
                          metadata: Optional[dict[str, str]] = None, input_name: str = "images",
                          dynamic_output_axes: bool = False) -> Path:
    nodes = [helper.make_node("ReduceMean", [input_name], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["zero_mean"])]
    inits = [numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    graph_outputs = []
    for name, value in outputs.items():
        value = np.asarray(value)
        inits.append(numpy_helper.from_array(value, f"{name}_const"))
        if value.dtype == np.float32:
            nodes.append(helper.make_node("Add", [f"{name}_const", "zero_mean"], [name]))
        else:  # integer outputs: cast the zero and add
            nodes.append(helper.make_node("Cast", ["zero_mean"], [f"{name}_zero"], to=_TYPES[value.dtype]))
            nodes.append(helper.make_node("Add", [f"{name}_const", f"{name}_zero"], [name]))
        shape = [None] * value.ndim if dynamic_output_axes else list(value.shape)
        graph_outputs.append(helper.make_tensor_value_info(name, _TYPES[value.dtype], shape))
    graph = helper.make_graph(nodes, "known_outputs",
                              [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_shape))],
                              graph_outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def rect_mask(shape: tuple[int, int], x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def upsampled_rect(shape: tuple[int, int], region: tuple[int, int, int, int],
                   box: tuple[int, int, int, int] = (0, 0, 1 << 30, 1 << 30)) -> np.ndarray:
    """The mask a bilinear upsample of a hard-edged map rectangle gives, cropped to ``box``.

    Upsampling a rectangle of +/- logits by 4x (or any factor >= 2, pixel-centre aligned)
    reproduces its edges exactly but rounds off each corner pixel, where both bilinear
    weights fall below one half. Corners cut away by the box are not the region's own.
    """
    x0, y0, x1, y1 = region
    bx0, by0, bx1, by1 = box
    m = rect_mask(shape, max(x0, bx0), max(y0, by0), min(x1, bx1), min(y1, by1))
    left, right, top, bottom = x0 >= bx0, x1 <= bx1, y0 >= by0, y1 <= by1  # sides the box leaves intact
    for keep_x, keep_y, cx, cy in ((left, top, x0, y0), (right, top, x1 - 1, y0),
                                   (left, bottom, x0, y1 - 1), (right, bottom, x1 - 1, y1 - 1)):
        if keep_x and keep_y:
            m[cy, cx] = False
    return m


NM = 32
# A 640x480 frame letterboxed into a 640x640 YOLO input: 80 padding rows above and below.
IMAGE = np.full((480, 640, 3), 90, np.uint8)
PAD_Y = 80


def yolo_protos(regions_input: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Prototype k = +10 inside region k (input pixels, multiples of 4), -10 elsewhere."""
    protos = np.full((1, NM, 160, 160), -10.0, np.float32)
    for k, (x0, y0, x1, y1) in enumerate(regions_input):
        protos[0, k, y0 // 4:y1 // 4, x0 // 4:x1 // 4] = 10.0
    return protos


def yolo_row(box_image, score, cls, nc, proto_index):
    """One candidate column: box given in IMAGE pixels, written in input pixels (cx, cy, w, h)."""
    x0, y0, x1, y1 = box_image
    row = np.zeros(4 + nc + NM, np.float32)
    row[:4] = ((x0 + x1) / 2, (y0 + y1) / 2 + PAD_Y, x1 - x0, y1 - y0)
    row[4 + cls] = score
    row[4 + nc + proto_index] = 1.0
    return row
