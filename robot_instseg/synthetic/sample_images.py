"""Deterministic stand-in camera frames for benchmarks and smoke runs (no files needed)."""

from __future__ import annotations

import cv2
import numpy as np


def sample_frame(height: int = 480, width: int = 640, seed: int = 0, objects: int = 12) -> np.ndarray:
    """An RGB uint8 frame: textured background with filled shapes, same for the same seed."""
    rng = np.random.default_rng(seed)
    frame = cv2.GaussianBlur(rng.integers(90, 140, (height, width, 3), dtype=np.uint8), (7, 7), 0)
    for _ in range(objects):
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(min(height, width) // 20, min(height, width) // 5))
        if rng.random() < 0.5:
            cv2.circle(frame, (cx, cy), size, colour, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(frame, (cx - size, cy - size // 2), (cx + size, cy + size // 2), colour, -1)
    return frame
