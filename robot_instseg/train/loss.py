"""Targets and losses for CompactSeg's raw outputs.

Assignment is task-aligned (as in YOLOv8/TOOD): for each ground-truth instance the
candidate cells are those whose centre falls on the instance's visible mask (or near its
box centre, so tiny or thin objects still get one), ranked by
``score ** alpha * IoU ** beta`` of the current prediction; the top ``k`` become positives and
a cell claimed twice goes to the instance its box overlaps most. Class targets are the
normalised alignment (an IoU-aware score, so confidence ranks mask quality); boxes use
GIoU; masks use per-pixel BCE against the instance mask at prototype resolution, inside
its box, averaged per instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch.nn import functional as F

from robot_instseg.engine.decoders.yolo_seg import DEFAULT_AMODAL_MARGIN
from robot_instseg.train.model import STRIDES, CompactSeg


@dataclass(frozen=True)
class LossConfig:
    """The task-aligned assigner (topk, alpha, beta) and the weights of the box, class and mask terms."""

    topk: int = 10
    alpha: float = 0.5
    beta: float = 6.0
    box_weight: float = 5.0
    cls_weight: float = 1.0
    mask_weight: float = 4.0
    amodal_weight: float = 4.0  # the amodal head's mask term (models with the head only)
    # pixels of the whole mask hidden behind others weigh this much more: they are a few per cent of the grown
    # box, and a head that only repeats the visible mask leaves them out at little cost (measured: 3 epochs at
    # weight 1 grew whole masks to 1.01x the visible area where the truth is 1.28x)
    amodal_hidden_weight: float = 5.0
    amodal_margin: float = DEFAULT_AMODAL_MARGIN  # the whole mask is learnt within the box grown this much per side
    max_mask_positives: int = 12  # per instance, to bound the mask loss' cost


@dataclass
class Target:
    """One image's ground truth in input pixels."""

    boxes: torch.Tensor  # (n, 4) xyxy
    classes: torch.Tensor  # (n,) long
    masks: torch.Tensor  # (n, H, W) bool at input resolution
    proto_masks: torch.Tensor  # (n, Hp, Wp) float in [0, 1], area-averaged
    amodal_proto_masks: Optional[torch.Tensor] = None  # (n, Hp, Wp) whole masks, like proto_masks
    has_amodal: Optional[torch.Tensor] = None  # (n,) bool: the instance has amodal ground truth


def box_iou_pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of (n, 4) against (m, 4) xyxy boxes -> (n, m)."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    return inter / (area_a[:, None] + area_b[None] - inter + 1e-9)


def giou_aligned(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalised IoU of matching rows of (n, 4) xyxy boxes."""
    lt = torch.maximum(a[:, :2], b[:, :2])
    rb = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    union = area_a + area_b - inter + 1e-9
    hull = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).clamp(min=0).prod(-1) + 1e-9
    iou = inter / union
    return iou - (hull - union) / hull


class SegLoss:
    """Callable on (raw outputs, protos, targets) -> (total, parts dict)."""

    def __init__(self, model: CompactSeg, config: LossConfig = LossConfig()) -> None:
        self.config = config
        self.num_classes = model.config.num_classes
        self._grid_key = None

    def _grid(self, raw, device, dtype):
        key = tuple(level[0].shape[-2:] for level in raw)
        if key != self._grid_key:
            centres, strides = [], []
            for (h, w), stride in zip(key, STRIDES):
                centres.append(CompactSeg.grid(h, w, stride, device, dtype))
                strides.append(torch.full((h * w,), float(stride), device=device, dtype=dtype))
            self._centres, self._strides = torch.cat(centres), torch.cat(strides)
            self._grid_key = key
        return self._centres, self._strides

    def __call__(self, raw, protos: torch.Tensor, targets: list[Target]):
        cfg = self.config
        device, dtype = protos.device, protos.dtype
        centres, strides = self._grid(raw, device, dtype)
        box_logits, cls_logits, coefs, *amodal = [torch.cat([level[k].flatten(2) for level in raw], 2).transpose(1, 2)
                                                  for k in range(len(raw[0]))]  # (B, A, 4 | nc | nm | nm)
        dist = F.softplus(box_logits) * strides[None, :, None]
        pred_boxes = torch.cat([centres[None] - dist[..., :2], centres[None] + dist[..., 2:]], -1)

        cls_target = torch.zeros_like(cls_logits)
        box_terms, mask_terms, amodal_terms = [], [], []
        weight_sum = torch.zeros((), device=device, dtype=dtype)
        in_h, in_w = targets[0].masks.shape[-2:] if targets else (0, 0)
        for b, target in enumerate(targets):
            n = len(target.classes)
            if n == 0:
                continue
            with torch.no_grad():
                assigned, norm_align = self._assign(target, pred_boxes[b], cls_logits[b], centres, strides,
                                                    (in_h, in_w))
            pos = torch.nonzero(assigned >= 0).squeeze(1)
            if len(pos) == 0:
                continue
            gt = assigned[pos]
            weights = norm_align[pos]
            cls_target[b, pos, target.classes[gt]] = weights
            weight_sum = weight_sum + weights.sum()
            giou = giou_aligned(pred_boxes[b, pos], target.boxes[gt])
            box_terms.append(((1.0 - giou) * weights).sum())
            keep = self._mask_positives(gt, weights)
            mask_terms.append(self._mask_loss(coefs[b, pos[keep]], protos[b], target.proto_masks[gt[keep]],
                                              target.boxes[gt[keep]], target.masks.shape[-2:], 0.0))
            if amodal and target.amodal_proto_masks is not None and target.has_amodal is not None:
                learnt = keep[target.has_amodal[gt[keep]]]
                if len(learnt):
                    whole = target.amodal_proto_masks[gt[learnt]]
                    hidden = (whole - target.proto_masks[gt[learnt]]).clamp(min=0)
                    amodal_terms.append(self._mask_loss(amodal[0][b, pos[learnt]], protos[b], whole,
                                                        target.boxes[gt[learnt]], target.masks.shape[-2:],
                                                        cfg.amodal_margin, 1.0 + (cfg.amodal_hidden_weight - 1.0) * hidden))
        norm = weight_sum.clamp(min=1.0)
        loss_cls = F.binary_cross_entropy_with_logits(cls_logits, cls_target, reduction="sum") / norm
        loss_box = torch.stack(box_terms).sum() / norm if box_terms else pred_boxes.sum() * 0
        loss_mask = torch.stack(mask_terms).mean() if mask_terms else protos.sum() * 0
        total = cfg.cls_weight * loss_cls + cfg.box_weight * loss_box + cfg.mask_weight * loss_mask
        parts = {"cls": float(loss_cls.detach()), "box": float(loss_box.detach()), "mask": float(loss_mask.detach())}
        if amodal:
            loss_amodal = torch.stack(amodal_terms).mean() if amodal_terms else amodal[0].sum() * 0
            total = total + cfg.amodal_weight * loss_amodal
            parts["amodal"] = float(loss_amodal.detach())
        return total, parts

    def _assign(self, target: Target, pred_boxes, cls_logits, centres, strides, input_shape):
        """-> (gt index per cell or -1, normalised alignment per cell)."""
        cfg = self.config
        in_h, in_w = input_shape
        n, num_cells = len(target.classes), len(centres)
        cx = centres[:, 0].long().clamp(0, in_w - 1)
        cy = centres[:, 1].long().clamp(0, in_h - 1)
        on_mask = target.masks[:, cy, cx]  # (n, A)
        boxes = target.boxes
        box_centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        offset = (centres[None] - box_centre[:, None]).abs().max(-1).values  # (n, A)
        inside = ((centres[None] >= boxes[:, None, :2]) & (centres[None] <= boxes[:, None, 2:])).all(-1)
        candidates = on_mask | (inside & (offset <= strides[None]))
        # Every instance gets at least its nearest stride-8 cell.
        nearest = torch.where(strides == STRIDES[0], offset, torch.full_like(offset, float("inf"))).argmin(1)
        candidates[torch.arange(n), nearest] = True

        iou = box_iou_pairwise(boxes, pred_boxes)  # (n, A)
        scores = cls_logits.sigmoid()[:, target.classes].T  # (n, A)
        align = scores.pow(cfg.alpha) * iou.pow(cfg.beta) * candidates
        k = min(cfg.topk, num_cells)
        rank = align + candidates.to(align.dtype) * 1e-9  # prefer candidates when every metric is zero
        top = rank.topk(k, dim=1).indices
        chosen = torch.zeros_like(candidates)
        chosen.scatter_(1, top, True)
        chosen &= candidates
        # A cell claimed by several instances goes to the one its prediction overlaps most.
        claimed = chosen.sum(0) > 1
        if claimed.any():
            best = torch.where(chosen, iou, torch.full_like(iou, -1.0)).argmax(0)
            winner = torch.zeros_like(chosen)
            winner[best, torch.arange(num_cells, device=best.device)] = True
            chosen = torch.where(claimed[None], winner & chosen, chosen)
        assigned = torch.where(chosen.any(0), chosen.float().argmax(0), torch.full((num_cells,), -1,
                                                                                     device=chosen.device))
        align = align * chosen
        iou_c = iou * chosen
        max_align = align.max(1, keepdim=True).values.clamp(min=1e-9)
        max_iou = iou_c.max(1, keepdim=True).values
        norm_align = (align / max_align * max_iou).max(0).values
        # Positives whose prediction is still far off keep a small floor so they learn.
        norm_align = torch.where(assigned >= 0, norm_align.clamp(min=0.05), norm_align)
        return assigned, norm_align

    def _mask_positives(self, gt: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Indices into the positives: the best-aligned few of each instance, to bound the mask terms' cost."""
        keep = []
        for g in torch.unique(gt):
            idx = torch.nonzero(gt == g).squeeze(1)
            if len(idx) > self.config.max_mask_positives:
                idx = idx[weights[idx].topk(self.config.max_mask_positives).indices]
            keep.append(idx)
        return torch.cat(keep)

    @staticmethod
    def _mask_loss(coef, protos, truth, boxes, input_shape, margin: float, pixel_weights=None):
        """Per-pixel BCE of coef . protos against ``truth`` inside each box, grown by one prototype cell and by
        ``margin`` of its size per side (0: the visible mask; the amodal one reaches past the visible box);
        ``pixel_weights`` (like ``truth``) weigh pixels within the box."""
        nm, hp, wp = protos.shape
        logits = (coef @ protos.reshape(nm, -1)).reshape(-1, hp, wp)
        in_h, in_w = input_shape
        sx, sy = wp / in_w, hp / in_h
        grow_x = (boxes[:, 2:3] - boxes[:, 0:1]) * margin
        grow_y = (boxes[:, 3:4] - boxes[:, 1:2]) * margin
        xs = torch.arange(wp, device=protos.device, dtype=protos.dtype) + 0.5
        ys = torch.arange(hp, device=protos.device, dtype=protos.dtype) + 0.5
        # Box in prototype cells, grown by one cell so the boundary itself is learnt.
        x0, x1 = (boxes[:, 0:1] - grow_x) * sx - 1, (boxes[:, 2:3] + grow_x) * sx + 1
        y0, y1 = (boxes[:, 1:2] - grow_y) * sy - 1, (boxes[:, 3:4] + grow_y) * sy + 1
        in_box = ((xs[None] >= x0) & (xs[None] <= x1))[:, None, :] & ((ys[None] >= y0) & (ys[None] <= y1))[:, :, None]
        bce = F.binary_cross_entropy_with_logits(logits, truth, reduction="none") * in_box
        if pixel_weights is not None:
            bce = bce * pixel_weights
        per_instance = bce.flatten(1).sum(1) / in_box.flatten(1).sum(1).clamp(min=1)
        return per_instance.mean()
