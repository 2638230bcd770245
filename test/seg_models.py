"""A YOLO-seg ONNX model with known instances for node tests: whatever the image, it finds a
cup, a bowl overlapping it (so the label image must resolve the overlap) and a box."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx_graphs import constant_output_model

NM, NC, N = 32, 3, 8400
NAMES = ["cup", "bowl", "box"]
PAD_Y = 80  # a 640x480 frame letterboxed into 640x640


def instance_tensors(instances) -> tuple[np.ndarray, np.ndarray]:
    """YOLO-seg output0 / output1 holding ((x0, y0, x1, y1), score, class) instances, masks = their boxes
    shrunk by 2 proto cells, for a 640x480 frame letterboxed into 640x640."""
    preds = np.zeros((1, 4 + NC + NM, N), np.float32)
    protos = np.full((1, NM, 160, 160), -10.0, np.float32)
    for k, ((x0, y0, x1, y1), score, cls) in enumerate(instances):
        col = preds[0, :, 1000 + 10 * k]
        col[:4] = ((x0 + x1) / 2, (y0 + y1) / 2 + PAD_Y, x1 - x0, y1 - y0)
        col[4 + cls] = score
        col[4 + NC + k] = 1.0
        protos[0, k, (y0 + PAD_Y) // 4 + 2:(y1 + PAD_Y) // 4 - 2, x0 // 4 + 2:x1 // 4 - 2] = 10.0
    return preds, protos


KNOWN = [((100, 50, 300, 250), 0.9, 0), ((200, 150, 400, 350), 0.8, 1), ((450, 300, 600, 460), 0.7, 2)]
METADATA = {"names": repr({i: n for i, n in enumerate(NAMES)}), "task": "segment", "stride": "32",
            "imgsz": "[640, 640]"}


def known_instances_model(path: Path) -> Path:
    preds, protos = instance_tensors(KNOWN)
    return constant_output_model(path, {"output0": preds, "output1": protos}, metadata=METADATA)


def brightness_scored_model(path: Path) -> Path:
    """The known-instances model, except the box's score is the mean of the preprocessed input
    (0..1): a uniform grey frame of value g (640x480, letterboxed with 114) scores
    0.75 * g / 255 + 0.25 * 114 / 255, so the publisher sets each frame's box score."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    preds, protos = instance_tensors([*KNOWN[:2], (KNOWN[2][0], 0.0, 2)])  # the box scores 0 + mean
    onehot = np.zeros_like(preds)
    onehot[0, 4 + 2, 1000 + 20] = 1.0
    nodes = [helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
             helper.make_node("Mul", ["onehot", "mean"], ["scored"]),
             helper.make_node("Add", ["preds", "scored"], ["output0"]),
             helper.make_node("Mul", ["mean", "zero"], ["zero_mean"]),
             helper.make_node("Add", ["protos", "zero_mean"], ["output1"])]
    inits = [numpy_helper.from_array(preds, "preds"), numpy_helper.from_array(onehot, "onehot"),
             numpy_helper.from_array(protos, "protos"), numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    graph = helper.make_graph(nodes, "brightness_scored",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(preds.shape)),
                               helper.make_tensor_value_info("output1", TensorProto.FLOAT, list(protos.shape))],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in METADATA.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def random_weight_yolo_export(folder: Path) -> Path:
    """A CompactSeg with seeded random weights (3 classes, 256x256) exported in the Ultralytics YOLO-seg
    layout: an export whose outputs nobody chose, for decode parity tests."""
    import torch

    from robot_instseg.train.export import export_checkpoint
    from robot_instseg.train.model import CompactSeg, ModelConfig

    torch.manual_seed(7)
    config = ModelConfig(num_classes=3, width=16, imgsz=256)
    ckpt = Path(folder) / "random.pt"
    torch.save({"model": CompactSeg(config).state_dict(), "config": config.to_dict(), "names": ["a", "b", "c"]}, ckpt)
    return export_checkpoint(ckpt, Path(folder) / "random.onnx")
