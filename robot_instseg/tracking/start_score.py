"""The score from which a detection starts a track, following how sure the model is of the scene.

Why: a model is less sure of a scene unlike its training data (a user's own robot, light, clutter):
every score drops, and objects it publishes (from the node's score_threshold) but scores under a
fixed start score never get an id. The start score is ``scene_share`` times the median score of
the published detections of the last ``scene_window_s`` of camera time, never above
``high_score`` (a scene the model knows keeps it) nor under ``low_score``. Measured in the README
("Ids for what the model is less sure of"): on the project's clips, where published scores have a
median of 0.84-0.89, it sits at 0.45-0.48; on held-out clips (medians 0.47-0.81) it goes down to 0.25-0.44.
"""

from __future__ import annotations

from collections import deque
from typing import Optional

import numpy as np

MIN_SCORES = 20  # published scores needed before the median moves the start score


class StartScore:
    """The start score of one camera's tracker, from the published scores it has seen."""

    def __init__(self) -> None:
        self._recent: deque = deque()  # (stamp_s, scores of one frame's published detections)
        self.value: Optional[float] = None  # the last start score given (None before the first frame)

    def reset(self) -> None:
        self._recent.clear()

    def update(self, stamp_s: float, published_scores: np.ndarray, high_score: float, low_score: float,
               scene_share: float, scene_window_s: float) -> float:
        """The start score for the frame stamped ``stamp_s`` (its published scores included); ``scene_share``
        0 keeps ``high_score``."""
        self._recent.append((stamp_s, np.asarray(published_scores, np.float64)))
        while self._recent and stamp_s - self._recent[0][0] > scene_window_s:
            self._recent.popleft()
        value = high_score
        if scene_share > 0:
            scores = np.concatenate([s for _, s in self._recent])
            if scores.size >= MIN_SCORES:
                value = min(high_score, max(low_score, scene_share * float(np.median(scores))))
        self.value = value
        return value
