"""Detections: the one container every stage after the model uses.

Masks are held at full image resolution but only inside each instance's integer box
(``mask_boxes``: x0, y0, x1, y1, exclusive ends), so 100 instances on a 1920x1080 frame cost
the sum of their box areas, not 100 full frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence, Union

import cv2
import numpy as np

from robot_instseg.engine.ownership import Ownership, resolve

Index = Union[int, slice, Sequence[int], np.ndarray]


@dataclass
class Detections:
    """N instances in one image of ``image_shape`` (height, width)."""

    image_shape: tuple[int, int]
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # xyxy, float pixels
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    class_names: list[str] = field(default_factory=list)
    track_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))  # 0 = untracked
    mask_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int32))  # x0 y0 x1 y1
    masks: list[np.ndarray] = field(default_factory=list)  # bool, each (y1-y0, x1-x0)
    # float32 per-pixel mask evidence (logits) over the same boxes; empty when unknown
    mask_logits: list[np.ndarray] = field(default_factory=list)
    # index of the stronger instance this one is another reading of (same object), -1 = none
    alternative_of: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    # whole (amodal) masks, occluded parts included, each over its own box: empty without an amodal head
    amodal_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int32))  # x0 y0 x1 y1
    amodal_masks: list[np.ndarray] = field(default_factory=list)  # bool, each (y1-y0, x1-x0)
    # the head's reach on the same boxes (at the decode threshold, a superset of amodal_masks when the model
    # publishes its whole masks at a higher one): what the occlusion order reads; empty = amodal_masks
    amodal_reach: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.boxes)
        self.image_shape = (int(self.image_shape[0]), int(self.image_shape[1]))
        self.boxes = np.asarray(self.boxes, np.float32).reshape(n, 4)
        self.scores = np.asarray(self.scores, np.float32).reshape(n)
        self.class_ids = np.asarray(self.class_ids, np.int32).reshape(n)
        if len(self.track_ids) == 0 and n:
            self.track_ids = np.zeros(n, np.int64)
        self.track_ids = np.asarray(self.track_ids, np.int64).reshape(n)
        if len(self.alternative_of) == 0 and n:
            self.alternative_of = np.full(n, -1, np.int64)
        self.alternative_of = np.asarray(self.alternative_of, np.int64).reshape(n)
        if not self.class_names and n:
            self.class_names = [""] * n
        self.mask_boxes = np.asarray(self.mask_boxes, np.int32).reshape(-1, 4)
        self.amodal_boxes = np.asarray(self.amodal_boxes, np.int32).reshape(-1, 4)
        if (len(self.class_names) != n or len(self.masks) not in (0, n) or len(self.mask_boxes) != len(self.masks)
                or len(self.mask_logits) not in (0, len(self.masks)) or len(self.amodal_masks) not in (0, n)
                or len(self.amodal_boxes) != len(self.amodal_masks)
                or len(self.amodal_reach) not in (0, len(self.amodal_masks))):
            raise ValueError(f"Detections fields disagree in length: {n} boxes, {len(self.class_names)} names, "
                             f"{len(self.masks)} masks, {len(self.mask_boxes)} mask boxes, "
                             f"{len(self.mask_logits)} mask logits, {len(self.amodal_masks)} amodal masks, "
                             f"{len(self.amodal_boxes)} amodal boxes, {len(self.amodal_reach)} amodal reaches")

    # -- construction --------------------------------------------------------------------
    @classmethod
    def empty(cls, image_shape: tuple[int, int]) -> "Detections":
        return cls(image_shape=image_shape)

    @classmethod
    def from_full_masks(cls, full_masks: np.ndarray, scores: Iterable[float], class_ids: Iterable[int],
                        class_names: Optional[Sequence[str]] = None) -> "Detections":
        """Build from N full-frame boolean masks (for tests and tools); boxes are the masks' extents."""
        full_masks = np.asarray(full_masks, bool)
        n, h, w = full_masks.shape
        boxes, crops = [], []
        for m in full_masks:
            ys, xs = np.nonzero(m)
            if len(xs) == 0:
                x0 = y0 = x1 = y1 = 0
            else:
                x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            boxes.append((x0, y0, x1, y1))
            crops.append(m[y0:y1, x0:x1].copy())
        return cls(image_shape=(h, w), boxes=np.array(boxes, np.float32).reshape(n, 4),
                   scores=np.fromiter(scores, np.float32, n), class_ids=np.fromiter(class_ids, np.int32, n),
                   class_names=list(class_names) if class_names is not None else [""] * n,
                   mask_boxes=np.array(boxes, np.int32).reshape(n, 4), masks=crops)

    # -- sequence behaviour --------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def has_masks(self) -> bool:
        return len(self.masks) == len(self) and len(self) > 0

    @property
    def has_amodal(self) -> bool:
        """Every instance carries its whole (amodal) mask (a model with the amodal head)."""
        return len(self.amodal_masks) == len(self) and len(self) > 0

    @property
    def reaches(self) -> list[np.ndarray]:
        """Each instance's amodal reach (``amodal_reach``, or its whole mask where the model has one threshold)."""
        return self.amodal_reach or self.amodal_masks

    def __getitem__(self, index: Index) -> "Detections":
        """Select instances by int, slice, index array or boolean array; returns Detections."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        idx = np.atleast_1d(np.arange(len(self))[index])
        picked = idx.tolist()  # Python ints: list lookups by numpy scalars cost more than the copies
        new_index = np.full(len(self) + 1, -1, np.int64)  # old index -> new (-1: left out); [-1] stays -1
        new_index[idx] = np.arange(len(idx))
        return Detections(
            image_shape=self.image_shape, boxes=self.boxes[idx], scores=self.scores[idx],
            class_ids=self.class_ids[idx], class_names=[self.class_names[i] for i in picked],
            track_ids=self.track_ids[idx], alternative_of=new_index[self.alternative_of[idx]],
            mask_boxes=self.mask_boxes[idx] if self.masks else np.zeros((0, 4), np.int32),
            masks=[self.masks[i] for i in picked] if self.masks else [],
            mask_logits=[self.mask_logits[i] for i in picked] if self.mask_logits else [],
            amodal_boxes=self.amodal_boxes[idx] if self.amodal_masks else np.zeros((0, 4), np.int32),
            amodal_masks=[self.amodal_masks[i] for i in picked] if self.amodal_masks else [],
            amodal_reach=[self.amodal_reach[i] for i in picked] if self.amodal_reach else [])

    def split_at(self, score: float) -> tuple["Detections", "Detections"]:
        """(instances scoring at least ``score``, the rest), each in the original order; where every instance
        scores at least ``score``, the first is this very object (nothing to copy)."""
        above = self.scores >= score
        if above.all():
            return self, self[np.zeros(0, np.int64)]
        return self[np.flatnonzero(above)], self[np.flatnonzero(~above)]

    @classmethod
    def concatenate(cls, first: "Detections", second: "Detections") -> "Detections":
        """``first``'s instances then ``second``'s, of one image (``alternative_of`` re-pointed); masks, logits
        and amodal masks are kept only where both have them or one is empty."""
        if first.image_shape != second.image_shape:
            raise ValueError(f"cannot join detections of a {first.image_shape} and a {second.image_shape} image")
        if not len(second):
            return first
        if not len(first):
            return second
        masks = first.masks + second.masks if first.has_masks and second.has_masks else []
        logits = first.mask_logits + second.mask_logits if masks and first.mask_logits and second.mask_logits else []
        shifted = np.where(second.alternative_of >= 0, second.alternative_of + len(first), -1)
        amodal = first.has_amodal and second.has_amodal
        reach = first.reaches + second.reaches if amodal and (first.amodal_reach or second.amodal_reach) else []
        return cls(image_shape=first.image_shape, boxes=np.concatenate([first.boxes, second.boxes]),
                   scores=np.concatenate([first.scores, second.scores]),
                   class_ids=np.concatenate([first.class_ids, second.class_ids]),
                   class_names=first.class_names + second.class_names,
                   track_ids=np.concatenate([first.track_ids, second.track_ids]),
                   mask_boxes=np.concatenate([first.mask_boxes, second.mask_boxes]) if masks else np.zeros((0, 4)),
                   masks=masks, mask_logits=logits,
                   alternative_of=np.concatenate([first.alternative_of, shifted]),
                   amodal_boxes=np.concatenate([first.amodal_boxes, second.amodal_boxes]) if amodal else
                   np.zeros((0, 4), np.int32),
                   amodal_masks=first.amodal_masks + second.amodal_masks if amodal else [], amodal_reach=reach)

    def filter(self, min_score: float = 0.0, class_ids: Optional[Iterable[int]] = None,
               class_names: Optional[Iterable[str]] = None, max_count: Optional[int] = None) -> "Detections":
        """Keep instances scoring at least ``min_score`` of the given classes, best ``max_count`` first."""
        keep = self.scores >= min_score
        if class_ids is not None or class_names is not None:
            wanted = np.isin(self.class_ids, list(class_ids or []))
            names = set(class_names or [])
            wanted |= np.array([n in names for n in self.class_names], bool)
            keep &= wanted
        idx = np.nonzero(keep)[0]
        idx = idx[np.argsort(-self.scores[idx], kind="stable")]
        if max_count is not None:
            idx = idx[:max_count]
        return self[idx]

    # -- masks ----------------------------------------------------------------------------
    def full_mask(self, i: int) -> np.ndarray:
        """Instance ``i``'s mask as a full-frame boolean array (allocates one frame)."""
        full = np.zeros(self.image_shape, bool)
        if self.masks:
            x0, y0, x1, y1 = self.mask_boxes[i]
            full[y0:y1, x0:x1] = self.masks[i]
        return full

    def areas(self) -> np.ndarray:
        return np.array([int(m.sum()) for m in self.masks], np.int64)

    def resolve_overlaps(self, dtype: type = np.uint16) -> Ownership:
        """One owner per claimed pixel (``engine.ownership``): score x mask probability at the
        pixel decides; without mask logits, the higher score. Alternatives are marked."""
        if len(self) >= np.iinfo(dtype).max:
            raise ValueError(f"{len(self)} instances do not fit a {np.dtype(dtype).name} label image")
        return resolve(self.image_shape, self.mask_boxes, self.masks, self.scores, self.mask_logits or None, dtype)

    def to_label_image(self, dtype: type = np.uint16) -> np.ndarray:
        """Full-frame instance-id image: pixel = index + 1 of the instance it shows, 0 = background."""
        return self.resolve_overlaps(dtype).labels

    def visible_masks(self, ownership: Optional[Ownership] = None) -> "Detections":
        """A copy whose masks keep only the pixels each instance owns in the label image.

        Published masks and the label image then agree pixel for pixel, except for an
        alternative reading of a stronger instance (``alternative_of``), which keeps its full
        mask: its pixels are labelled with that instance. Pass ``ownership`` when the caller
        already holds ``resolve_overlaps()`` (the node publishes its labels too).
        """
        ownership = self.resolve_overlaps() if ownership is None else ownership
        labels = ownership.labels
        alternative_of = ownership.alternative_of.copy()
        masks = [m if alternative_of[i] >= 0 else labels[y0:y1, x0:x1] == i + 1
                 for i, (m, (x0, y0, x1, y1)) in enumerate(zip(self.masks, self.mask_boxes.tolist()))]
        return Detections(image_shape=self.image_shape, boxes=self.boxes.copy(), scores=self.scores.copy(),
                          class_ids=self.class_ids.copy(), class_names=list(self.class_names),
                          track_ids=self.track_ids.copy(), mask_boxes=self.mask_boxes.copy(), masks=masks,
                          mask_logits=list(self.mask_logits), alternative_of=alternative_of,
                          amodal_boxes=self.amodal_boxes.copy(), amodal_masks=list(self.amodal_masks),
                          amodal_reach=list(self.amodal_reach))

    def to_rle(self) -> list[dict]:
        """COCO run-length encodings (pycocotools), one per instance, ``counts`` as str."""
        from pycocotools import mask as mask_utils

        rles = []
        for i in range(len(self)):
            rle = mask_utils.encode(np.asfortranarray(self.full_mask(i).astype(np.uint8)))
            rle["counts"] = rle["counts"].decode("ascii")
            rles.append(rle)
        return rles

    def to_polygons(self, i: int, min_points: int = 3) -> list[np.ndarray]:
        """Outer contours of instance ``i`` as (K, 2) float arrays of image (x, y) pixel coordinates."""
        if not self.masks:
            return []
        x0, y0 = self.mask_boxes[i][:2]
        contours, _ = cv2.findContours(self.masks[i].astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        return [c.reshape(-1, 2).astype(np.float32) + (x0, y0) for c in contours if len(c) >= min_points]

    def xywh(self) -> np.ndarray:
        """Boxes as x, y, width, height (the COCO form)."""
        out = self.boxes.copy()
        out[:, 2:] -= out[:, :2]
        return out
