"""A YOLO-seg ONNX model with known instances for node tests: whatever the image, it finds a
cup, a bowl overlapping it (so the label image must resolve the overlap) and a box."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from onnx_graphs import constant_output_model

NM, NC, N = 32, 3, 8400
NAMES = ["cup", "bowl", "box"]
PAD_Y = 80  # a 640x480 frame letterboxed into 640x640


def known_instances_model(path: Path) -> Path:
    preds = np.zeros((1, 4 + NC + NM, N), np.float32)
    protos = np.full((1, NM, 160, 160), -10.0, np.float32)
    instances = [((100, 50, 300, 250), 0.9, 0), ((200, 150, 400, 350), 0.8, 1), ((450, 300, 600, 460), 0.7, 2)]
    for k, ((x0, y0, x1, y1), score, cls) in enumerate(instances):
        col = preds[0, :, 1000 + 10 * k]
        col[:4] = ((x0 + x1) / 2, (y0 + y1) / 2 + PAD_Y, x1 - x0, y1 - y0)
        col[4 + cls] = score
        col[4 + NC + k] = 1.0
        protos[0, k, (y0 + PAD_Y) // 4 + 2:(y1 + PAD_Y) // 4 - 2, x0 // 4 + 2:x1 // 4 - 2] = 10.0
    names = repr({i: n for i, n in enumerate(NAMES)})
    return constant_output_model(path, {"output0": preds, "output1": protos},
                                 metadata={"names": names, "task": "segment", "stride": "32", "imgsz": "[640, 640]"})
