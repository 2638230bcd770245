"""YOLO mask decode and overlap ownership on the device, for the kept instances only.

Every instance's box pixels are laid end to end ("packed": instance by instance, row-major
inside its box), so the work and the download are the sum of the box areas, never N frames.
Per packed pixel the arithmetic is ``engine.mask_sampling``'s, in the same float32 order
(bilinear along x, then y, over coefficients . prototypes), and ownership is
``engine.ownership``'s rule computed at once for all pixels:

- pair overlaps (for "another reading of the same object") from one matrix product of the
  masks over the rectangle where boxes overlap; the greedy choice stays on the host
  (``ownership.readings``, a handful of numbers);
- each contested pixel goes to the highest evidence (log score + log sigmoid of the logit),
  ties to the better score: a scatter-max of evidence, then a scatter-min of score rank
  among the pixels that reach it; that is exactly the host's strict ``>`` in score order.

Only the bits of the raw and the visible masks come back (packed 8 to a byte).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from robot_instseg.engine.mask_sampling import MapSampler, map_window, tight_box
from robot_instseg.engine.ownership import SCORE_WEIGHT, box_overlaps, readings

_BIT_WEIGHTS = (1, 2, 4, 8, 16, 32, 64, 128)  # little bit order, as np.unpackbits(bitorder="little")


@dataclass
class MaskResult:
    """Host-side result of the device mask stage."""

    masks: list[np.ndarray]  # raw bool masks over mask_boxes
    visible: list[np.ndarray]  # the pixels each instance owns (alternatives keep their raw mask)
    alternative_of: np.ndarray  # int64, -1 = primary


class Transfers:
    """Bytes handed host -> device and device -> host in one frame.

    Counted on every device, CPU torch included (there the bytes stay in RAM): the pipeline
    moves the same bytes whatever the device, so CI can check the traffic a GPU would see.
    """

    def __init__(self) -> None:
        self.up = 0
        self.down = 0

    def upload(self, array: np.ndarray, device: torch.device) -> torch.Tensor:
        """``array`` as a tensor on ``device`` (a view when the device is the CPU)."""
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        self.up += tensor.numel() * tensor.element_size()
        return tensor if device.type == "cpu" else tensor.to(device)

    def download(self, tensor: torch.Tensor) -> np.ndarray:
        """``tensor`` as a host numpy array."""
        self.down += tensor.numel() * tensor.element_size()
        return tensor.detach().cpu().numpy()


def pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """Flat bool tensor -> uint8, 8 bits a byte, little bit order (zero-padded at the end)."""
    pad = (-bits.numel()) % 8
    if pad:
        bits = torch.cat([bits, bits.new_zeros(pad)])
    weights = torch.tensor(_BIT_WEIGHTS, dtype=torch.uint8, device=bits.device)
    return (bits.view(-1, 8).to(torch.uint8) * weights).sum(1, dtype=torch.uint8)


def unpack_crops(packed: np.ndarray, mask_boxes: np.ndarray) -> list[np.ndarray]:
    """Packed bits -> one bool array per box (its height x width)."""
    sizes = [(int(y1 - y0), int(x1 - x0)) for x0, y0, x1, y1 in mask_boxes.tolist()]
    total = sum(h * w for h, w in sizes)
    flat = np.unpackbits(packed, count=total, bitorder="little").astype(bool)
    crops, start = [], 0
    for h, w in sizes:
        crops.append(flat[start:start + h * w].reshape(h, w))
        start += h * w
    return crops


class PackedPixels:
    """Per packed pixel: its instance and its frame row and column (built on the device)."""

    def __init__(self, mask_boxes: torch.Tensor) -> None:
        boxes = mask_boxes.to(torch.int64)
        widths = (boxes[:, 2] - boxes[:, 0]).clamp(min=0)
        heights = (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
        areas = widths * heights
        device = boxes.device
        self.instance = torch.repeat_interleave(torch.arange(len(boxes), device=device), areas)
        starts = torch.cumsum(areas, 0) - areas
        local = torch.arange(self.instance.numel(), device=device) - starts[self.instance]
        width = widths[self.instance]
        self.y = boxes[self.instance, 1] + torch.div(local, width, rounding_mode="floor")
        self.x = boxes[self.instance, 0] + local % width


class DeviceMaskDecoder:
    """Samples, thresholds and resolves YOLO masks on one device; taps are cached per frame geometry."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._taps: dict[tuple, tuple[torch.Tensor, ...]] = {}

    def _sampler_taps(self, sampler: MapSampler, transfers: Transfers) -> tuple[torch.Tensor, ...]:
        key = (sampler.window, len(sampler.rows.lower), len(sampler.cols.lower))
        if key not in self._taps:
            arrays = (sampler.rows.lower, sampler.rows.upper, sampler.rows.weight,
                      sampler.cols.lower, sampler.cols.upper, sampler.cols.weight)
            self._taps[key] = tuple(transfers.upload(a, self.device) for a in arrays)
        return self._taps[key]

    def logits(self, coefficients: torch.Tensor, protos: torch.Tensor, pixels: PackedPixels,
               sampler: MapSampler, transfers: Transfers) -> torch.Tensor:
        """Sampled mask logit of every packed pixel (float32), as ``MapSampler.sample`` computes it."""
        nm, mh, mw = protos.shape
        maps = (coefficients.to(torch.float32) @ protos.to(torch.float32).reshape(nm, -1)).reshape(-1)
        rl, ru, rw, cl, cu, cw = self._sampler_taps(sampler, transfers)
        base = pixels.instance * (mh * mw)
        top, bottom = base + rl[pixels.y] * mw, base + ru[pixels.y] * mw
        left, right, wx = cl[pixels.x], cu[pixels.x], cw[pixels.x]
        one = torch.tensor(1.0, dtype=torch.float32, device=self.device)
        upper = maps[top + left] * (one - wx) + maps[top + right] * wx
        lower = maps[bottom + left] * (one - wx) + maps[bottom + right] * wx
        wy = rw[pixels.y]
        return upper * (one - wy) + lower * wy

    def _raw(self, coefficients: torch.Tensor, protos: torch.Tensor, mask_boxes: np.ndarray, sampler: MapSampler,
             threshold: float, transfers: Transfers) -> tuple[PackedPixels, torch.Tensor, torch.Tensor, list[np.ndarray]]:
        """(packed pixels, their logits, their test against ``threshold``, the masks' bits brought back)."""
        pixels = PackedPixels(transfers.upload(mask_boxes.astype(np.int32), self.device))
        logits = self.logits(coefficients, protos, pixels, sampler, transfers)
        inside = logits > threshold
        return pixels, logits, inside, unpack_crops(transfers.download(pack_bits(inside)), mask_boxes)

    def whole_masks(self, coefficients: torch.Tensor, protos: torch.Tensor, mask_boxes: np.ndarray,
                    sampler: MapSampler, threshold: float, transfers: Transfers,
                    publish: Optional[float] = None) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """The amodal head's masks (no ownership): each box first cut to where its map can be positive, as the
        host's ``support_boxes`` cuts it (the map's positive rows and columns of each box's window come back
        as bits), then sampled there. (boxes, masks, reaches): with ``publish`` (logits, above ``threshold``)
        the masks are the pixels above it and the reaches those above ``threshold``, else no reaches."""
        if len(mask_boxes) == 0:
            return mask_boxes.copy(), [], []
        nm, mh, mw = protos.shape
        positive = ((coefficients.to(torch.float32) @ protos.to(torch.float32).reshape(nm, -1)) > threshold)
        positive = positive.reshape(-1, mh, mw)
        windows = np.zeros((len(mask_boxes), 4), np.int64)  # my0, my1, mx0, mx1; empty boxes read nothing
        boxes = [(x0, y0, x1, y1) for x0, y0, x1, y1 in mask_boxes.tolist()]
        filled = [i for i, (x0, y0, x1, y1) in enumerate(boxes) if x1 > x0 and y1 > y0]
        for i in filled:
            windows[i] = map_window(sampler, boxes[i])
        w = transfers.upload(windows, self.device)
        rows, cols = torch.arange(mh, device=self.device), torch.arange(mw, device=self.device)
        row_in = (rows[None] >= w[:, :1]) & (rows[None] < w[:, 1:2])
        col_in = (cols[None] >= w[:, 2:3]) & (cols[None] < w[:, 3:4])
        hits = torch.cat([(positive & col_in[:, None, :]).any(2) & row_in,
                          (positive & row_in[:, :, None]).any(1) & col_in], 1)
        flat = np.unpackbits(transfers.download(pack_bits(hits.reshape(-1))), count=hits.numel(),
                             bitorder="little").astype(bool).reshape(len(mask_boxes), mh + mw)
        tight = mask_boxes.copy()
        for i in filled:
            my0, _, mx0, _ = windows[i]
            tight[i] = tight_box(sampler, boxes[i],
                                 np.flatnonzero(flat[i, :mh]) - my0, np.flatnonzero(flat[i, mh:]) - mx0)
        _, logits, _, reach = self._raw(coefficients, protos, tight, sampler, threshold, transfers)
        if publish is None:
            return tight, reach, []
        return tight, unpack_crops(transfers.download(pack_bits(logits > publish)), tight), reach

    def decode(self, coefficients: torch.Tensor, protos: torch.Tensor, mask_boxes: np.ndarray, scores: np.ndarray,
               image_shape: tuple[int, int], sampler: MapSampler, threshold: float,
               transfers: Transfers) -> MaskResult:
        """Raw masks, ownership and visible masks of the kept instances; only their bits come back."""
        n = len(mask_boxes)
        if n == 0:
            return MaskResult([], [], np.zeros(0, np.int64))
        pixels, logits, inside, raw = self._raw(coefficients, protos, mask_boxes, sampler, threshold, transfers)
        order = np.argsort(-np.asarray(scores, np.float32), kind="stable")  # best score first, as ownership
        alternative_of, contested = self._readings(pixels, inside, mask_boxes, order, raw, transfers)
        if not contested.any():  # nobody contests a pixel: every mask is visible as it is
            return MaskResult(raw, raw, alternative_of)
        visible_bits = self._owned(pixels, inside, logits, scores, order, contested, image_shape, transfers)
        return MaskResult(raw, unpack_crops(transfers.download(pack_bits(visible_bits)), mask_boxes),
                          alternative_of)

    def _readings(self, pixels: PackedPixels, inside: torch.Tensor, mask_boxes: np.ndarray, order: np.ndarray,
                  raw: list[np.ndarray], transfers: Transfers) -> tuple[np.ndarray, np.ndarray]:
        """(alternative_of, contested) as ``ownership.resolve`` decides them."""
        overlaps = box_overlaps(mask_boxes)
        rivals = np.flatnonzero(overlaps.any(axis=1))
        shared = np.zeros((len(mask_boxes),) * 2, np.int64)  # pixels shared by two masks
        if len(rivals):
            shared[np.ix_(rivals, rivals)] = self._pair_counts(pixels, inside, mask_boxes, rivals, transfers)
        counts = np.array([int(m.sum()) for m in raw], np.int64)

        def overlap(i: int, j: int) -> float:
            smaller = min(counts[i], counts[j])
            return float(shared[i, j]) / smaller if smaller else 0.0

        alternative_of = readings(order, overlaps, overlap)
        primary = alternative_of < 0
        contested = np.asarray((overlaps & primary[:, None] & primary[None, :]).any(axis=1), bool)
        return alternative_of, contested

    def _pair_counts(self, pixels: PackedPixels, inside: torch.Tensor, mask_boxes: np.ndarray,
                     rivals: np.ndarray, transfers: Transfers) -> np.ndarray:
        """Pixels shared by every pair of ``rivals``' masks: one product over their boxes' union."""
        x0, y0 = int(mask_boxes[rivals, 0].min()), int(mask_boxes[rivals, 1].min())
        x1, y1 = int(mask_boxes[rivals, 2].max()), int(mask_boxes[rivals, 3].max())
        slot = torch.full((len(mask_boxes),), -1, dtype=torch.int64, device=self.device)
        slot[transfers.upload(rivals.astype(np.int64), self.device)] = torch.arange(len(rivals), device=self.device)
        take = inside & (slot[pixels.instance] >= 0)
        width = x1 - x0
        cells = torch.zeros((len(rivals), (y1 - y0) * width), dtype=torch.float32, device=self.device)
        cells[slot[pixels.instance[take]], (pixels.y[take] - y0) * width + (pixels.x[take] - x0)] = 1.0
        return transfers.download((cells @ cells.T).round().to(torch.int64))

    def _owned(self, pixels: PackedPixels, inside: torch.Tensor, logits: torch.Tensor, scores: np.ndarray,
               order: np.ndarray, contested: np.ndarray, image_shape: tuple[int, int],
               transfers: Transfers) -> torch.Tensor:
        """Per packed pixel: in the instance's visible mask (contested pixels go to the most evidence)."""
        n = len(scores)
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n)
        log_score = np.array([np.float32(SCORE_WEIGHT * np.log(max(float(s), 1e-12))) for s in scores], np.float32)
        contested_t = transfers.upload(contested, self.device)
        rank_t = transfers.upload(rank, self.device)
        log_score_t = transfers.upload(log_score, self.device)
        fight = inside & contested_t[pixels.instance]
        instance = pixels.instance[fight]
        where = pixels.y[fight] * image_shape[1] + pixels.x[fight]
        evidence = log_score_t[instance] - torch.logaddexp(torch.zeros((), device=self.device), -logits[fight])
        best = torch.full((image_shape[0] * image_shape[1],), -torch.inf, dtype=torch.float32, device=self.device)
        best.scatter_reduce_(0, where, evidence, reduce="amax")
        reaches = evidence == best[where]
        first = torch.full_like(best, n, dtype=torch.int64)
        first.scatter_reduce_(0, where[reaches], rank_t[instance[reaches]], reduce="amin")
        wins = rank_t[instance] == first[where]
        visible = inside & ~contested_t[pixels.instance]
        visible[fight.nonzero().squeeze(1)[wins]] = True
        return visible
