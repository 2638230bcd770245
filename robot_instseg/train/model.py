"""A compact anchor-free instance-segmentation network whose ONNX export has the Ultralytics
YOLO-seg output layout, so one decoder serves our model and users' Ultralytics models.

Outputs (inference): ``output0`` [B, 4 + nc + nm, N] with boxes as cx, cy, w, h in input
pixels, class scores after sigmoid and nm mask coefficients, over N = sum of the stride-8,
16 and 32 grid cells; ``output1`` prototypes [B, nm, H/4, W/4]; with the amodal head,
``amodal_coefficients`` [B, nm, N]: each cell's coefficients of its instance's whole mask.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence, Union

import torch
from torch import nn
from torch.nn import functional as F

from robot_instseg.engine.decoders.yolo_seg import DEFAULT_AMODAL_MARGIN

STRIDES = (8, 16, 32)
OUTPUT_NAMES = ("output0", "output1")  # the Ultralytics YOLO-seg layout


@dataclass(frozen=True)
class ModelConfig:
    """Width, depth, classes and mask prototypes of the compact model."""

    num_classes: int = 6
    num_masks: int = 32
    width: int = 32  # channels of the stride-4 stage; deeper stages are multiples
    imgsz: Union[int, tuple[int, int]] = 640  # input (height, width), or one side of a square
    amodal: bool = False  # a second set of mask coefficients for each instance's whole (amodal) mask
    amodal_margin: float = DEFAULT_AMODAL_MARGIN  # a whole mask is learnt and decoded in the box grown this much

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def input_size(self) -> tuple[int, int]:
        return input_hw(self.imgsz)


def input_hw(imgsz: Union[int, Sequence[int]]) -> tuple[int, int]:
    """(height, width) from 640 or (480, 640), each a multiple of the largest stride."""
    values = [imgsz] if isinstance(imgsz, (int, float)) else list(imgsz)
    size = tuple(int(v) for v in (values * 2 if len(values) == 1 else values))
    if len(size) != 2 or min(size) <= 0 or any(v % max(STRIDES) for v in size):
        raise ValueError(f"imgsz must be one or two positive multiples of {max(STRIDES)}, got {imgsz}")
    return size  # type: ignore[return-value]


class ConvBNAct(nn.Sequential):
    """Convolution, batch norm and SiLU."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, s: int = 1, groups: int = 1) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, k, s, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), nn.SiLU(inplace=True))


class Residual(nn.Module):
    """Two 3x3 convs with a skip: cheap depth."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBNAct(c, c // 2, 1), ConvBNAct(c // 2, c, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Stage(nn.Sequential):
    """A strided convolution followed by residual blocks."""

    def __init__(self, c_in: int, c_out: int, depth: int) -> None:
        super().__init__(ConvBNAct(c_in, c_out, 3, 2), *[Residual(c_out) for _ in range(depth)])


class Head(nn.Module):
    """Per-level branches: box distances (l, t, r, b), class logits, mask coefficients and, with ``amodal``,
    amodal mask coefficients: a 1x1 convolution beside the visible one on the same hidden features, over the
    same prototypes (the extra cost is one small matrix product per cell)."""

    def __init__(self, c_in: int, num_classes: int, num_masks: int, hidden: int, amodal: bool = False) -> None:
        super().__init__()
        self.box = nn.Sequential(ConvBNAct(c_in, hidden), ConvBNAct(hidden, hidden), nn.Conv2d(hidden, 4, 1))
        self.cls = nn.Sequential(ConvBNAct(c_in, hidden), ConvBNAct(hidden, hidden), nn.Conv2d(hidden, num_classes, 1))
        self.coef = nn.Sequential(ConvBNAct(c_in, hidden), nn.Conv2d(hidden, num_masks, 1))
        self.amodal = nn.Conv2d(hidden, num_masks, 1) if amodal else None
        nn.init.constant_(self.cls[-1].bias, -4.6)  # start near p = 0.01: stable focal-style training

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hidden = self.coef[0](x)
        if self.amodal is None:
            return self.box(x), self.cls(x), self.coef[1](hidden)
        return self.box(x), self.cls(x), self.coef[1](hidden), self.amodal(hidden)

    def start_amodal_from_visible(self) -> None:
        """The amodal coefficients start as the visible ones: a whole mask is at least its visible part."""
        if self.amodal is not None:
            with torch.no_grad():
                self.amodal.weight.copy_(self.coef[1].weight)
                self.amodal.bias.copy_(self.coef[1].bias)


class CompactSeg(nn.Module):
    """A small YOLO-seg-style model: backbone, prototype masks and a dense head."""

    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.stem = nn.Sequential(ConvBNAct(3, w // 2, 3, 2), ConvBNAct(w // 2, w, 3, 2), Residual(w))  # /4
        self.s8 = Stage(w, 2 * w, 2)
        self.s16 = Stage(2 * w, 4 * w, 2)
        self.s32 = Stage(4 * w, 6 * w, 1)
        self.lat32 = ConvBNAct(6 * w, 4 * w, 1)
        self.fuse16 = nn.Sequential(ConvBNAct(8 * w, 4 * w, 1), Residual(4 * w))
        self.lat16 = ConvBNAct(4 * w, 2 * w, 1)
        self.fuse8 = nn.Sequential(ConvBNAct(4 * w, 2 * w, 1), Residual(2 * w))
        self.down8 = ConvBNAct(2 * w, 2 * w, 3, 2)
        self.pan16 = nn.Sequential(ConvBNAct(6 * w, 4 * w, 1), Residual(4 * w))
        self.down16 = ConvBNAct(4 * w, 4 * w, 3, 2)
        self.pan32 = nn.Sequential(ConvBNAct(10 * w, 6 * w, 1), Residual(6 * w))
        self.heads = nn.ModuleList([Head(c, config.num_classes, config.num_masks, 2 * w, config.amodal)
                                    for c in (2 * w, 4 * w, 6 * w)])
        self.proto = nn.Sequential(ConvBNAct(2 * w + w, 2 * w), ConvBNAct(2 * w, 2 * w),
                                   nn.Conv2d(2 * w, config.num_masks, 1))
        self.export_mode = False

    def features(self, x: torch.Tensor):
        c4 = self.stem(x)
        c8 = self.s8(c4)
        c16 = self.s16(c8)
        c32 = self.s32(c16)
        t32 = self.lat32(c32)
        p16 = self.fuse16(torch.cat([F.interpolate(t32, scale_factor=2.0, mode="nearest"), c16], 1))
        t16 = self.lat16(p16)
        p8 = self.fuse8(torch.cat([F.interpolate(t16, scale_factor=2.0, mode="nearest"), c8], 1))
        n16 = self.pan16(torch.cat([self.down8(p8), p16], 1))
        n32 = self.pan32(torch.cat([self.down16(n16), c32], 1))
        proto_in = torch.cat([F.interpolate(p8, scale_factor=2.0, mode="nearest"), c4], 1)
        return (p8, n16, n32), self.proto(proto_in)

    def forward(self, x: torch.Tensor):
        """Training: raw per-level maps. Export mode: the Ultralytics-layout tensors, then (amodal) the amodal
        coefficients [B, nm, N] in the same cell order."""
        levels, protos = self.features(x)
        raw = [head(feat) for head, feat in zip(self.heads, levels)]
        if not self.export_mode:
            return raw, protos
        if self.config.amodal:
            return self.decode(raw), protos, torch.cat([level[3].flatten(2) for level in raw], 2)
        return self.decode(raw), protos

    @staticmethod
    def grid(h: int, w: int, stride: int, device, dtype) -> torch.Tensor:
        """Cell centres in input pixels, shape (h*w, 2), row-major like the flattened maps."""
        ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) * stride
        xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) * stride
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)

    @staticmethod
    def distances(box_logits: torch.Tensor, stride: int) -> torch.Tensor:
        """Per-cell (l, t, r, b) distances in pixels: softplus keeps them positive."""
        return F.softplus(box_logits) * stride

    def decode(self, raw) -> torch.Tensor:
        outs = []
        for (box, cls, coef, *_), stride in zip(raw, STRIDES):
            b, _, h, w = box.shape
            centres = self.grid(h, w, stride, box.device, box.dtype).T.unsqueeze(0)  # (1, 2, hw)
            dist = self.distances(box.flatten(2), stride)  # (b, 4, hw)
            x0y0 = centres - dist[:, :2]
            x1y1 = centres + dist[:, 2:]
            cxcy, wh = (x0y0 + x1y1) / 2, x1y1 - x0y0
            outs.append(torch.cat([cxcy, wh, cls.flatten(2).sigmoid(), coef.flatten(2)], 1))
        return torch.cat(outs, 2)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters())
