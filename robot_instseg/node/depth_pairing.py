"""Pair each colour frame with its depth frame by stamp, never waiting longer than a bound.

Depth from an RGB-D driver arrives on its own topic, usually a few milliseconds before or
after the colour frame of the same exposure. ``DepthBuffer`` keeps the recent depth frames by
stamp; ``pair`` takes the one with the colour frame's stamp, else the nearest within the
allowed skew, and waits (until a deadline the caller sets) only while a matching one may
still come: no depth stream at all, or one already past the frame, returns at once. A frame
older than the first depth frame of the stream predates it (no_depth, like no stream), even
when the worker reaches it only after later depth frames have come.
``CameraInfos`` does the same for CameraInfo: once the driver has been seen to stamp one per
frame, a frame waits (to the same deadline) for its own rather than take the previous frame's.
``DepthLag`` learns how long after its colour frame a stream's depth arrives and sets the wait from
it: a depth stream that trails colour by 40 ms gets a 40-odd ms wait instead of a fixed 30 ms that
loses a fifth of the frames, within the hard cap ``depth_wait_max_ms``.
``DepthCounts`` counts the outcome of every frame by reason, for diagnostics, and the share of
frames with 3D over the last minute.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from typing import Callable, Generic, Iterable, Optional, TypeVar

import numpy as np

T = TypeVar("T")

# Reasons a frame is published without 3D (each counted in diagnostics as depth_<reason>).
NO_DEPTH = "no_depth"  # no depth stream (nothing received lately, or the stream began after this frame)
NO_MATCH = "no_matching_depth"  # depth arrives, but none within depth_max_skew_ms of this frame
LATE = "late_depth"  # the matching depth did not arrive within depth_wait_ms
NO_CAMERA_INFO = "no_camera_info"
RECENT_SHARE_S = 60.0  # the share of frames with 3D is reported over this many seconds


def with_stamp_or_newest(items: Iterable[tuple[int, T]], stamp_ns: int) -> Optional[T]:
    """Of (stamp, item) pairs in arrival order, the newest item with ``stamp_ns``, else the newest of all
    (CameraInfo: drivers send one per frame, but a fixed calibration is also fine to reuse)."""
    pairs = list(items)
    for stamp, item in reversed(pairs):
        if stamp == stamp_ns:
            return item
    return pairs[-1][1] if pairs else None


class CameraInfos(Generic[T]):
    """The last ``capacity`` CameraInfo messages in arrival order, each with its stamp (nanoseconds).

    A driver that sends one per frame stamps it like the frame, and it may arrive after the frame's
    depth; taking the newest then gives a frame its predecessor's calibration (a broken one, a zoom).
    So once a frame has found a CameraInfo with its own stamp, later frames wait for theirs until their
    deadline, and only while none newer than them has come; a fixed calibration (stamps that never
    match a frame) is reused at once."""

    def __init__(self, capacity: int = 30, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._items: list[tuple[int, T]] = []
        self.capacity = capacity
        self.per_frame = False  # a frame has found a CameraInfo with its own stamp
        self._cond = threading.Condition()

    def add(self, stamp_ns: int, item: T) -> None:
        with self._cond:
            self._items.append((stamp_ns, item))
            del self._items[:-self.capacity]
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._items.clear()

    def for_frame(self, stamp_ns: int, deadline: float) -> Optional[T]:
        """The one stamped ``stamp_ns``; where the driver stamps one per frame, wait for it until ``deadline``
        (on the clock given at construction); else, or when none came, the newest."""
        with self._cond:
            while True:
                for stamp, item in reversed(self._items):
                    if stamp == stamp_ns:
                        self.per_frame = True
                        return item
                now = self._clock()
                if not self.per_frame or not self._items or self._items[-1][0] > stamp_ns or now >= deadline:
                    return self._items[-1][1] if self._items else None
                self._cond.wait(deadline - now)


class DepthBuffer(Generic[T]):
    """The last ``capacity`` depth frames, ordered by stamp (nanoseconds)."""

    def __init__(self, capacity: int = 30, live_window_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.live_window_s = live_window_s
        self._clock = clock
        self._stamps: list[int] = []
        self._items: list[T] = []
        self._last_arrival = -float("inf")
        self._stream_start_ns = 0  # the oldest stamp of the depth stream since its last silence
        self._cond = threading.Condition()

    def add(self, stamp_ns: int, item: T) -> None:
        """Store a depth frame (a repeated stamp replaces the older one) and wake a waiting ``pair``."""
        with self._cond:
            at = bisect.bisect_left(self._stamps, stamp_ns)
            if at < len(self._stamps) and self._stamps[at] == stamp_ns:
                self._items[at] = item
            else:
                self._stamps.insert(at, stamp_ns)
                self._items.insert(at, item)
            if len(self._stamps) > self.capacity:
                del self._stamps[0], self._items[0]
            now = self._clock()
            if now - self._last_arrival > self.live_window_s:
                self._stream_start_ns = stamp_ns
            self._stream_start_ns = min(self._stream_start_ns, stamp_ns)  # out of order: an older one came later
            self._last_arrival = now
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._stamps.clear()
            self._items.clear()
            self._last_arrival = -float("inf")

    def _nearest(self, stamp_ns: int, max_skew_ns: int) -> Optional[T]:
        at = bisect.bisect_left(self._stamps, stamp_ns)
        best, best_gap = None, max_skew_ns
        for i in (at - 1, at):
            if 0 <= i < len(self._stamps) and abs(self._stamps[i] - stamp_ns) <= best_gap:
                best, best_gap = self._items[i], abs(self._stamps[i] - stamp_ns)
        return best

    def pair(self, stamp_ns: int, max_skew_ns: int, deadline: float) -> tuple[Optional[T], str]:
        """(depth, "") for the frame stamped ``stamp_ns``, or (None, reason); waits at most until ``deadline``
        (on the clock given at construction) and only while a matching frame can still arrive."""
        with self._cond:
            while True:
                found = self._nearest(stamp_ns, max_skew_ns)
                if found is not None:
                    return found, ""
                now = self._clock()
                if not self._stamps or now - self._last_arrival > self.live_window_s or \
                        stamp_ns + max_skew_ns < self._stream_start_ns:
                    return None, NO_DEPTH
                if self._stamps[-1] > stamp_ns + max_skew_ns:
                    return None, NO_MATCH  # the depth stream is already past this frame
                if now >= deadline:
                    return None, LATE
                self._cond.wait(deadline - now)


LAG_WINDOW_S = 10.0  # the lags learned from are those of the last this many seconds
LAG_QUANTILE = 0.9  # the wait covers this share of them (a robust high quantile: one stray sample moves it little)
LAG_MARGIN_S = 0.005  # added to it: scheduling jitter between the depth callback and the waiting worker
LAG_MIN_SAMPLES = 5  # fewer: the floor (depth_wait_ms) alone


class DepthLag:
    """How long after its colour frame a depth frame arrives (negative: before), learned per stream, and the
    wait that covers it: ``wait_s(floor, cap)`` = the LAG_QUANTILE of the last LAG_WINDOW_S of lags plus
    LAG_MARGIN_S, at least ``floor`` and never above ``cap``. A depth frame that arrives after its colour
    frame was given up on (late) still teaches the lag, so a wait that was too short grows."""

    def __init__(self, max_skew_ns: int = 20_000_000, clock: Callable[[], float] = time.monotonic,
                 remembered: int = 60) -> None:
        self.max_skew_ns = max_skew_ns
        self._clock = clock
        self._colour: dict[int, float] = {}  # stamp -> arrival of colour frames still without their depth
        self._depth: dict[int, float] = {}  # stamp -> arrival of depth frames whose colour frame was not seen
        self._lags: deque[tuple[float, float]] = deque(maxlen=1000)  # (when learned, lag s)
        self._remembered = remembered
        self._lock = threading.Lock()

    def colour(self, stamp_ns: int, arrived: float) -> None:
        """A colour frame stamped ``stamp_ns`` arrived at ``arrived`` (the clock's time)."""
        self._arrived(self._colour, self._depth, stamp_ns, arrived, -1.0)

    def depth(self, stamp_ns: int, arrived: float) -> None:
        """A depth frame stamped ``stamp_ns`` arrived at ``arrived``."""
        self._arrived(self._depth, self._colour, stamp_ns, arrived, 1.0)

    def _arrived(self, own: dict[int, float], other: dict[int, float], stamp_ns: int, arrived: float,
                 sign: float) -> None:
        """Learn the lag (depth minus colour arrival: ``sign`` says which this one is) when the other frame of the
        pair came first, else remember this one for it."""
        with self._lock:
            match = self._take(other, stamp_ns)
            if match is not None:
                self._learn(sign * (arrived - match))
            else:
                self._remember(own, stamp_ns, arrived)

    def _take(self, arrivals: dict[int, float], stamp_ns: int) -> Optional[float]:
        if stamp_ns in arrivals:
            return arrivals.pop(stamp_ns)
        near = [s for s in arrivals if abs(s - stamp_ns) <= self.max_skew_ns]
        return arrivals.pop(min(near, key=lambda s: abs(s - stamp_ns))) if near else None

    def _remember(self, arrivals: dict[int, float], stamp_ns: int, arrived: float) -> None:
        arrivals[stamp_ns] = arrived
        while len(arrivals) > self._remembered:
            del arrivals[min(arrivals)]

    def _learn(self, lag_s: float) -> None:
        self._lags.append((self._clock(), lag_s))

    def recent(self) -> list[float]:
        """The lags (s) of the last LAG_WINDOW_S."""
        since = self._clock() - LAG_WINDOW_S
        with self._lock:
            return [lag for at, lag in self._lags if at >= since]

    def high_lag_s(self, below_s: float = float("inf")) -> Optional[float]:
        """The LAG_QUANTILE of the recent lags under ``below_s``, None with fewer than LAG_MIN_SAMPLES of them."""
        lags = [lag for lag in self.recent() if lag < below_s]
        return float(np.quantile(lags, LAG_QUANTILE)) if len(lags) >= LAG_MIN_SAMPLES else None

    def wait_s(self, floor_s: float, cap_s: float) -> float:
        """How long a frame may wait for its depth: the learned lag (with margin), at least ``floor_s``, at most
        ``cap_s`` (the cap wins over the floor). Lags past the cap do not count: no wait within it would catch
        those frames (a reliable writer repairing a lost sample at its next heartbeat, seconds later), and
        letting them push the wait to the cap would only delay every frame's 2D output."""
        lag = self.high_lag_s(below_s=cap_s)
        wanted = floor_s if lag is None else max(floor_s, lag + LAG_MARGIN_S)
        return min(wanted, cap_s)

    def clear(self) -> None:
        with self._lock:
            self._colour.clear()
            self._depth.clear()
            self._lags.clear()


class DepthCounts:
    """How many frames got 3D, and how many did not, by reason; the last problem in words."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.fused = 0
        self.without: dict[str, int] = {}
        self.last_problem = ""
        self._fused_at = -float("inf")
        self._problem_at = -float("inf")
        self._outcomes: deque[tuple[float, bool]] = deque()  # (when, fused) of frames with a depth stream

    def _outcome(self, fused: bool) -> None:
        now = self._clock()
        self._outcomes.append((now, fused))
        while self._outcomes and self._outcomes[0][0] < now - RECENT_SHARE_S:
            self._outcomes.popleft()

    def fused_frame(self) -> None:
        with self._lock:
            self.fused += 1
            self._fused_at = self._clock()
            self._outcome(True)

    def frame_without(self, reason: str, detail: str = "") -> None:
        """A frame published without 3D. ``no_depth`` (no stream) is counted but is not a problem."""
        with self._lock:
            self.without[reason] = self.without.get(reason, 0) + 1
            if reason != NO_DEPTH:  # a frame without a depth stream does not count against the share
                self._outcome(False)
                self.last_problem = f"{reason}: {detail}" if detail else reason
                self._problem_at = self._clock()

    def snapshot(self, recent_s: float = 5.0) -> dict:
        """Counts, and ``failing``: depth problems in the last ``recent_s`` and no frame fused in them (a few
        late frames among fused ones are counted, not alarmed on)."""
        now = self._clock()
        with self._lock:
            failing = now - self._problem_at < recent_s and now - self._fused_at >= recent_s
            recent = [fused for at, fused in self._outcomes if at >= now - RECENT_SHARE_S]
            return {"fused": self.fused, "without": dict(self.without), "last_problem": self.last_problem,
                    "failing": failing, "recent_share": sum(recent) / len(recent) if recent else None,
                    "recent_frames": len(recent)}
