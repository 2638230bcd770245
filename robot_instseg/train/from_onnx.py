"""CompactSeg weights back from one of our own ONNX exports, so a shipped model can be fine-tuned.

The bundled model ships as ONNX only. The export folds every batch norm into the convolution
before it, so the file holds one weight and one bias per convolution. Reading them back by the
module each convolution node was traced from gives a network whose eval-mode output is the file's.
To fine-tune it, each batch norm is then re-opened around the folded convolution: its running
statistics are set to the statistics its input has on real images, and its scale and shift to
exactly undo them. The eval-mode output is unchanged, and a training-mode batch of similar images
normalises to nearly the same activations, so fine-tuning starts from the model's own accuracy
instead of a jump. Only ONNX tensors are read (no pickle).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from robot_instseg.engine.decoders.yolo_seg import AMODAL_OUTPUT, DEFAULT_AMODAL_MARGIN
from robot_instseg.train.model import CompactSeg, ModelConfig


class NotOurExport(ValueError):
    """The ONNX file is not a CompactSeg export this version can read back."""


def _module_of(node_name: str) -> str:
    """The module a node was traced from. Each scope repeats its parent's last name:
    '/fuse16/fuse16.1/body/body.0/body.0.0/Conv' -> 'fuse16.1.body.0.0'."""
    scopes = node_name.strip("/").split("/")[:-1]
    if not scopes:
        return ""
    path, parent = scopes[0], scopes[0]
    for scope in scopes[1:]:
        path += scope[len(parent):] if scope.startswith(parent + ".") else "." + scope
        parent = scope
    return path


def _batch_norm_after(model: CompactSeg) -> dict[nn.Conv2d, nn.BatchNorm2d]:
    """Each convolution that a batch norm follows (inside ConvBNAct), with that batch norm."""
    pairs = {}
    for module in model.modules():
        children = list(module.children())
        for conv, norm in zip(children, children[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                pairs[conv] = norm
    return pairs


def _read(path: Path) -> tuple[dict[str, tuple[np.ndarray, "np.ndarray | None"]], dict[str, str]]:
    import onnx
    from onnx import numpy_helper

    graph_model = onnx.load(str(path))
    tensors = {t.name: numpy_helper.to_array(t) for t in graph_model.graph.initializer}
    for node in graph_model.graph.node:  # the exporter shares equal constants through Identity nodes
        if node.op_type == "Identity" and node.input[0] in tensors:
            tensors[node.output[0]] = tensors[node.input[0]]
    convs = {}
    for node in graph_model.graph.node:
        if node.op_type != "Conv":
            continue
        constants = [tensors.get(name) for name in node.input[1:] if name]
        if any(c is None for c in constants) or not constants:
            raise NotOurExport(f"{path}: convolution {node.name} takes a weight or bias from the graph, not a constant")
        convs[_module_of(node.name)] = (constants[0], constants[1] if len(constants) > 1 else None)
    metadata = {p.key: p.value for p in graph_model.metadata_props}
    for output in graph_model.graph.output:  # output1: 1 x num_masks x H/4 x W/4 prototypes
        if output.name == "output1" and len(output.type.tensor_type.shape.dim) == 4:
            metadata["num_masks"] = str(output.type.tensor_type.shape.dim[1].dim_value)
        if output.name == AMODAL_OUTPUT:
            metadata["amodal_head"] = "true"
    return convs, metadata


def compactseg_from_onnx(path: Path) -> tuple[CompactSeg, list[str]]:
    """The network and class names of our ONNX export at ``path``; batch norms are identity until
    :func:`reopen_batch_norms` calibrates them."""
    convs, metadata = _read(Path(path))
    try:
        names = list(ast.literal_eval(metadata["names"]).values())
        imgsz = tuple(int(v) for v in ast.literal_eval(metadata["imgsz"]))
        num_masks = int(metadata["num_masks"])
        margin = float(metadata.get("amodal_margin", DEFAULT_AMODAL_MARGIN))
    except (KeyError, ValueError, SyntaxError, AttributeError) as exc:
        raise NotOurExport(f"{path}: no readable 'names' / 'imgsz' metadata or output1 prototypes ({exc})") from exc
    if "stem.0.0" not in convs:
        raise NotOurExport(f"{path}: no convolution traced from CompactSeg's stem.0.0")
    stem_width = 2 * convs["stem.0.0"][0].shape[0]  # the first convolution has width / 2 outputs
    model = CompactSeg(ModelConfig(num_classes=len(names), num_masks=num_masks, width=stem_width, imgsz=imgsz,
                                   amodal=metadata.get("amodal_head") == "true", amodal_margin=margin))
    ours = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    if set(ours) != set(convs):
        missing, extra = sorted(set(ours) - set(convs)), sorted(set(convs) - set(ours))
        raise NotOurExport(f"{path}: not a CompactSeg of width {stem_width}: convolutions missing {missing[:3]}, "
                           f"unknown {extra[:3]}")
    norms = _batch_norm_after(model)
    with torch.no_grad():
        for name, conv in ours.items():
            weight, bias = convs[name]
            if tuple(conv.weight.shape) != weight.shape:
                raise NotOurExport(f"{path}: convolution {name} is {weight.shape}, CompactSeg expects "
                                   f"{tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(weight.copy()))
            shift = torch.from_numpy(bias.copy()) if bias is not None else torch.zeros(weight.shape[0])
            norm = norms.get(conv)
            if norm is None:
                conv.bias.copy_(shift)
                continue
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
            norm.weight.fill_(1.0)
            norm.bias.copy_(shift)
    return model.eval(), names


def reopen_batch_norms(model: CompactSeg, batches: Iterable[torch.Tensor]) -> int:
    """Set every batch norm's running statistics to its input's on ``batches`` (images in [0, 1],
    N x 3 x H x W) and its scale and shift to undo them: eval output unchanged, training-mode
    batch statistics close to the running ones. Returns the number of images seen."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    sums = {n: torch.zeros(n.num_features, dtype=torch.float64) for n in norms}
    squares = {n: torch.zeros(n.num_features, dtype=torch.float64) for n in norms}
    counts = {n: 0 for n in norms}

    def record(norm: nn.BatchNorm2d, inputs: Sequence[torch.Tensor], _out: torch.Tensor) -> None:
        x = inputs[0].detach().double()
        sums[norm] += x.sum(dim=(0, 2, 3))
        squares[norm] += (x * x).sum(dim=(0, 2, 3))
        counts[norm] += x.shape[0] * x.shape[2] * x.shape[3]

    hooks = [n.register_forward_hook(record) for n in norms]
    images = 0
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                model(batch)
                images += batch.shape[0]
    finally:
        for hook in hooks:
            hook.remove()
    if not images:
        raise ValueError("reopen_batch_norms needs at least one image")
    with torch.no_grad():
        for norm in norms:
            # the input x reaches the output as (x - mean) / sqrt(var + eps) * weight + bias; with
            # mean 0, var 1 - eps, weight 1 (as read back) that is x + bias
            shift = norm.bias.clone()
            mean = (sums[norm] / counts[norm]).float()
            var = (squares[norm] / counts[norm]).float() - mean * mean
            var = var.clamp_min(1e-6)
            norm.running_mean.copy_(mean)
            norm.running_var.copy_(var)
            norm.weight.copy_(torch.sqrt(var + norm.eps))
            norm.bias.copy_(mean + shift)
    return images
