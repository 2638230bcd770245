"""COCO instance datasets for training: images letterboxed to the model input once, held in memory.

Any COCO instance file works (our synthetic scenes, or annotations of frames exported from
bags): polygons and RLE both load through pycocotools, ``iscrowd`` regions are left out,
and categories become contiguous class ids in category-id order. Several files can be
joined if their category names agree. An annotation's ``amodal_segmentation`` (KINS / COCOA
key, as ``scenes`` writes it) is its whole mask, for the amodal head.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from robot_instseg.engine.preprocess import LetterboxTransform, PreprocessConfig, make_transform

LOG = logging.getLogger(__name__)


@dataclass
class Sample:
    """One image at model-input size: RGB uint8, per-instance bool masks and class ids."""

    image: np.ndarray  # (H, W, 3) uint8 RGB, letterboxed
    masks: np.ndarray  # (n, H, W) bool
    classes: np.ndarray  # (n,) int64
    image_id: int
    transform: LetterboxTransform  # original image <-> input pixels
    # (n, H, W) bool whole (amodal) masks, or None when no annotation of the image has one; an instance
    # without one (``has_amodal`` False) holds its visible mask there and teaches nothing amodal
    amodal: Optional[np.ndarray] = None
    has_amodal: Optional[np.ndarray] = None  # (n,) bool


@dataclass(frozen=True)
class DatasetSource:
    """A COCO file and its image folder, as the trainer reads them."""

    coco: Path
    images: Path


def _category_names(coco) -> tuple[list[int], list[str]]:
    cats = sorted(coco.loadCats(coco.getCatIds()), key=lambda c: c["id"])
    return [int(c["id"]) for c in cats], [str(c["name"]) for c in cats]


def load_coco(coco_file: Path):
    """The COCO file, checked first (categories, boxes inside their images, segmentation types):
    a malformed file is refused with counts before training starts (CocoFileError, a ValueError)."""
    from robot_instseg.dataset.coco_check import load_checked_coco

    return load_checked_coco(coco_file)


def letterbox_rgb(image: np.ndarray, transform: LetterboxTransform, pad_value: int = 114) -> np.ndarray:
    """Resize (area-averaged) and pad an HxW or HxWxC uint8 image into the model input frame."""
    in_h, in_w = transform.input_shape
    new_w = int(round(transform.image_shape[1] * transform.scale_x))
    new_h = int(round(transform.image_shape[0] * transform.scale_y))
    out = np.full((in_h, in_w) + image.shape[2:], pad_value, np.uint8)
    resized = image if (new_h, new_w) == image.shape[:2] else cv2.resize(image, (new_w, new_h),
                                                                          interpolation=cv2.INTER_AREA)
    y, x = int(transform.pad_y), int(transform.pad_x)
    out[y:y + new_h, x:x + new_w] = resized.reshape((new_h, new_w) + image.shape[2:])
    return out


def letterbox_mask(mask: np.ndarray, transform: LetterboxTransform) -> np.ndarray:
    """A bool mask in the input frame: area-average, then threshold at one half."""
    return letterbox_rgb(mask.astype(np.uint8) * 255, transform, 0) >= 128


def _decode_segmentation(segm, h: int, w: int) -> np.ndarray:
    """A COCO segmentation (polygons, uncompressed or compressed RLE) as an (h, w) bool mask."""
    from pycocotools import mask as mask_utils

    if isinstance(segm, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
    elif isinstance(segm.get("counts"), list):
        rle = mask_utils.frPyObjects(segm, h, w)
    else:
        rle = segm
    return mask_utils.decode(rle).astype(bool)


class CocoSegDataset:
    """All images of one or more COCO files, cached at the input size (fast epochs on a CPU)."""

    def __init__(self, sources: Sequence[DatasetSource], input_size: tuple[int, int],
                 names: Optional[Sequence[str]] = None, limit: Optional[int] = None,
                 progress: Optional[Callable[[int], None]] = None) -> None:
        self.input_size = tuple(input_size)
        self.samples: list[Sample] = []
        self.names: list[str] = list(names) if names else []
        config = PreprocessConfig(size=self.input_size)
        for source in sources:
            coco = load_coco(source.coco)
            cat_ids, cat_names = _category_names(coco)
            if not self.names:
                self.names = cat_names
            unknown = [n for n in cat_names if n not in self.names]
            if unknown:
                raise ValueError(f"{source.coco}: categories {unknown} are not among the classes {self.names}")
            class_of = {cid: self.names.index(name) for cid, name in zip(cat_ids, cat_names)}
            image_ids = sorted(coco.getImgIds())
            if limit is not None:
                image_ids = image_ids[:max(0, limit - len(self.samples))]
            for image_id in image_ids:
                info = coco.loadImgs(image_id)[0]
                path = Path(source.images) / info["file_name"]
                if not path.is_file():
                    path = Path(source.images) / Path(info["file_name"]).name
                bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if bgr is None:
                    raise FileNotFoundError(f"{source.coco}: image {info['file_name']!r} not found or unreadable "
                                            f"under {source.images}")
                h, w = bgr.shape[:2]
                transform = make_transform((h, w), config)
                image = letterbox_rgb(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), transform)
                masks, classes, amodal, has_amodal = [], [], [], []
                for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=False)):
                    if not ann.get("segmentation"):
                        continue
                    small = letterbox_mask(_decode_segmentation(ann["segmentation"], h, w), transform)
                    if small.any():
                        masks.append(small)
                        classes.append(class_of[int(ann["category_id"])])
                        whole = ann.get("amodal_segmentation")
                        has_amodal.append(bool(whole))
                        amodal.append(letterbox_mask(_decode_segmentation(whole, h, w), transform) | small
                                      if whole else small)
                in_h, in_w = self.input_size
                stacked = np.stack(masks) if masks else np.zeros((0, in_h, in_w), bool)
                self.samples.append(Sample(
                    image=image, masks=stacked, classes=np.asarray(classes, np.int64), image_id=int(image_id),
                    transform=transform, amodal=np.stack(amodal) if any(has_amodal) else None,
                    has_amodal=np.asarray(has_amodal, bool) if any(has_amodal) else None))
                if progress:
                    progress(1)
        if not self.samples:
            raise ValueError("no images found in " + ", ".join(str(s.coco) for s in sources))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]
