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

import bisect
from collections import deque
from typing import Optional

import numpy as np

MIN_SCORES = 20  # published scores needed before the median moves the start score


class StartScore:
    """The start score of one camera's tracker, from the published scores it has seen."""

    def __init__(self) -> None:
        self._recent: deque = deque()  # (stamp_s, scores of one frame's published detections)
        self._sorted: list[float] = []  # every score of ``_recent``, ascending: the median without a sort per frame
        self.value: Optional[float] = None  # the last start score given (None before the first frame)

    def reset(self) -> None:
        self._recent.clear()
        self._sorted.clear()

    def update(self, stamp_s: float, published_scores: np.ndarray, high_score: float, low_score: float,
               scene_share: float, scene_window_s: float) -> float:
        """The start score for the frame stamped ``stamp_s`` (its published scores included); ``scene_share``
        0 keeps ``high_score``."""
        scores = [s for s in np.asarray(published_scores, np.float64).tolist() if s == s]  # NaN has no rank
        self._recent.append((stamp_s, scores))
        for score in scores:
            bisect.insort(self._sorted, score)
        while self._recent and stamp_s - self._recent[0][0] > scene_window_s:
            for score in self._recent.popleft()[1]:
                del self._sorted[bisect.bisect_left(self._sorted, score)]
        value = high_score
        if scene_share > 0 and len(self._sorted) >= MIN_SCORES:
            value = min(high_score, max(low_score, scene_share * _median(self._sorted)))
        self.value = value
        return value


def _median(ascending: list[float]) -> float:
    """The median of sorted values, as numpy's (the mean of the middle two of an even count)."""
    middle = len(ascending) // 2
    return ascending[middle] if len(ascending) % 2 else (ascending[middle - 1] + ascending[middle]) / 2
