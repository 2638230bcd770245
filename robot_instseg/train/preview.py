"""``train --augment-preview N``: a mosaic of augmented training samples with their masks, so a user
sees what the model is trained on before spending hours on it."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import cv2
import numpy as np

from robot_instseg.engine.types import Detections
from robot_instseg.io.overlay import draw, tile_grid
from robot_instseg.train.augment import AugmentConfig
from robot_instseg.train.augment_basic import BasicAugmentConfig, augment_with
from robot_instseg.train.dataset import Sample


def augmented_tiles(samples: Sequence[Sample], names: Sequence[str], count: int,
                    config: Union[AugmentConfig, BasicAugmentConfig], seed: int = 0) -> list[np.ndarray]:
    """``count`` augmented samples (each with a random donor for copy-paste), masks and classes drawn on."""
    rng = np.random.default_rng(seed)
    tiles = []
    for _ in range(count):
        sample, donor = samples[int(rng.integers(len(samples)))], samples[int(rng.integers(len(samples)))]
        image, masks, classes, _ = augment_with(config, sample.image, sample.masks, sample.classes, rng,
                                                lambda: (donor.image, donor.masks, donor.classes))
        if len(masks):
            detections = Detections.from_full_masks(masks, [1.0] * len(masks), classes.tolist(),
                                                    [names[int(c)] for c in classes])
            image = draw(image, detections, alpha=0.4)
        tiles.append(image)
    return tiles


def write_augment_preview(path: Path, samples: Sequence[Sample], names: Sequence[str], count: int,
                          config: Union[AugmentConfig, BasicAugmentConfig], seed: int = 0) -> Path:
    """Write the mosaic PNG of ``augmented_tiles`` (``io.overlay.tile_grid``) and return its path."""
    if count < 1:
        raise ValueError(f"--augment-preview needs at least 1 sample, got {count}")
    canvas = tile_grid(augmented_tiles(samples, names, count, config, seed))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path
