"""Which frames to record, and why: the capture modes of the node.

Time is the frame's own stamp (camera time), not the wall clock, so the same frames give
the same decisions live, in a bag replay, or in a test that recomputes them.

  off        nothing (manual service calls still work)
  all        every segmented frame
  interval   one frame every ``interval_s``
  uncertain  a frame with an instance whose score lies in [score_low, score_high], or with a
             class not seen for ``unseen_class_s`` (or never seen before)
  manual     only what ~/capture and ~/record ask for

``max_rate_hz`` caps every mode except a ~/capture request, which is always honoured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

MODES = ("off", "all", "interval", "uncertain", "manual")
MANUAL_CAPTURE = "manual_capture"
MANUAL_RECORD = "manual_record"


@dataclass(frozen=True)
class PolicyConfig:
    """The capture mode and its thresholds (see the module docstring)."""

    mode: str = "off"
    interval_s: float = 5.0
    score_low: float = 0.3
    score_high: float = 0.6
    unseen_class_s: float = 60.0  # 0 disables the unseen-class trigger
    max_rate_hz: float = 2.0  # 0 = no cap

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"record mode must be one of {list(MODES)}, got {self.mode!r}")
        if not 0.0 <= self.score_low <= self.score_high <= 1.0:
            raise ValueError(f"record score band must satisfy 0 <= low <= high <= 1, got "
                             f"[{self.score_low}, {self.score_high}]")
        if self.interval_s <= 0 or self.unseen_class_s < 0 or self.max_rate_hz < 0:
            raise ValueError("record interval must be > 0, unseen-class time and max rate >= 0")


class CapturePolicy:
    """Decides per segmented frame whether it is recorded; remembers when each class was seen."""

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self.continuous = False  # ~/record true: every frame, in any mode
        self._last_capture: Optional[float] = None
        self._last_interval: Optional[float] = None
        self._class_seen: dict[str, float] = {}

    def decide(self, stamp_s: float, scores: Sequence[float], class_names: Sequence[str]) -> Optional[str]:
        """The capture reason for this frame, or None. Call once per segmented frame, in order."""
        reason = self._reason(stamp_s, scores, class_names)
        for name in class_names:
            self._class_seen[name] = stamp_s
        if reason is None:
            return None
        cfg = self.config
        if cfg.max_rate_hz > 0 and self._last_capture is not None \
                and stamp_s - self._last_capture < 1.0 / cfg.max_rate_hz:
            return None
        self._last_capture = stamp_s
        if reason == "interval":
            self._last_interval = stamp_s
        return reason

    def manual_capture(self, stamp_s: float) -> str:
        self._last_capture = stamp_s
        return MANUAL_CAPTURE

    def _reason(self, stamp_s: float, scores: Sequence[float], class_names: Sequence[str]) -> Optional[str]:
        cfg = self.config
        if self.continuous:
            return MANUAL_RECORD
        if cfg.mode == "all":
            return "all"
        if cfg.mode == "interval":
            due = self._last_interval is None or stamp_s - self._last_interval >= cfg.interval_s
            return "interval" if due else None
        if cfg.mode == "uncertain":
            for score, name in zip(scores, class_names):
                if cfg.score_low <= score <= cfg.score_high:
                    return f"uncertain: {name} {score:.2f}"
            if cfg.unseen_class_s > 0:
                for name in class_names:
                    seen = self._class_seen.get(name)
                    if seen is None:
                        return f"new_class: {name}"
                    if stamp_s - seen >= cfg.unseen_class_s:
                        return f"unseen_class: {name} (last seen {stamp_s - seen:.0f} s ago)"
        return None
