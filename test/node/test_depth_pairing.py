"""Pairing depth with colour by stamp: exact first, nearest within the skew, bounded waits, reasons."""

from __future__ import annotations

import threading
import time

from robot_instseg.node.depth_pairing import (
    LAG_WINDOW_S,
    LATE,
    NO_DEPTH,
    NO_MATCH,
    RECENT_SHARE_S,
    DepthBuffer,
    DepthCounts,
    DepthLag,
)

MS = 1_000_000


def test_exact_stamp_first_then_nearest_within_the_skew() -> None:
    buf: DepthBuffer[str] = DepthBuffer()
    for stamp in (100, 133, 166):
        buf.add(stamp * MS, f"d{stamp}")
    now = time.monotonic()
    assert buf.pair(133 * MS, 20 * MS, now) == ("d133", "")
    assert buf.pair(140 * MS, 20 * MS, now) == ("d133", "")  # 7 ms from 133, 26 ms from 166
    assert buf.pair(150 * MS, 20 * MS, now) == ("d166", "")  # 16 ms from 166, 17 ms from 133
    assert buf.pair(150 * MS, 10 * MS, now) == (None, NO_MATCH)  # nothing that close, and depth is past it


def test_no_depth_stream_returns_at_once_without_waiting() -> None:
    buf: DepthBuffer[str] = DepthBuffer(live_window_s=1.0)
    started = time.monotonic()
    assert buf.pair(100 * MS, 20 * MS, started + 5.0) == (None, NO_DEPTH)
    clock = [0.0]
    stale: DepthBuffer[str] = DepthBuffer(live_window_s=1.0, clock=lambda: clock[0])
    stale.add(50 * MS, "old")
    clock[0] = 3.0  # the last depth came 3 s ago: the stream stopped
    assert stale.pair(100 * MS, 20 * MS, 10.0) == (None, NO_DEPTH)
    assert time.monotonic() - started < 1.0


def test_a_frame_older_than_the_depth_stream_has_no_depth_and_a_gap_inside_it_has_no_match() -> None:
    clock = [0.0]
    buf: DepthBuffer[str] = DepthBuffer(live_window_s=1.0, clock=lambda: clock[0])
    for stamp in (300, 333, 400):  # depth starts at 300; 366 is missing
        buf.add(stamp * MS, f"d{stamp}")
    assert buf.pair(233 * MS, 20 * MS, 0.0) == (None, NO_DEPTH)  # colour before depth began: reached late
    assert buf.pair(366 * MS, 20 * MS, 0.0) == (None, NO_MATCH)
    assert buf.pair(283 * MS, 10 * MS, 0.0) == (None, NO_DEPTH)
    buf.add(266 * MS, "d266")  # an older one arriving out of order moves the start back
    assert buf.pair(283 * MS, 10 * MS, 0.0) == (None, NO_MATCH)
    clock[0] = 5.0  # a silence, then the stream restarts later
    buf.add(900 * MS, "d900")
    assert buf.pair(800 * MS, 20 * MS, 5.0) == (None, NO_DEPTH)


def test_a_depth_frame_arriving_during_the_wait_is_taken_and_a_late_one_is_not() -> None:
    buf: DepthBuffer[str] = DepthBuffer()
    buf.add(100 * MS, "d100")
    threading.Timer(0.05, lambda: buf.add(133 * MS, "d133")).start()
    started = time.monotonic()
    assert buf.pair(133 * MS, 5 * MS, started + 2.0) == ("d133", "")
    assert time.monotonic() - started < 1.0  # woken by the arrival, not by the deadline
    started = time.monotonic()
    assert buf.pair(166 * MS, 5 * MS, started + 0.1) == (None, LATE)
    assert 0.09 <= time.monotonic() - started < 1.0


def test_capacity_keeps_the_newest_and_a_repeated_stamp_replaces() -> None:
    buf: DepthBuffer[int] = DepthBuffer(capacity=3)
    for stamp in (5, 1, 4, 2, 3):  # out of order
        buf.add(stamp * MS, stamp)
    buf.add(5 * MS, 50)
    now = time.monotonic()
    assert [buf.pair(s * MS, 0, now)[0] for s in (3, 4, 5)] == [3, 4, 50]
    assert buf.pair(2 * MS, 0, now)[0] is None


def test_counts_by_reason_and_failing_only_while_no_frame_is_fused() -> None:
    clock = [0.0]
    counts = DepthCounts(clock=lambda: clock[0])
    counts.frame_without(NO_DEPTH)
    assert counts.snapshot()["failing"] is False  # no stream at all is not a problem
    counts.frame_without("bad_encoding", "mono8 is not depth")
    snap = counts.snapshot()
    assert snap["failing"] and snap["without"] == {NO_DEPTH: 1, "bad_encoding": 1}
    assert snap["last_problem"] == "bad_encoding: mono8 is not depth"
    clock[0] = 1.0
    counts.fused_frame()
    assert counts.snapshot()["failing"] is False and counts.snapshot()["fused"] == 1
    clock[0] = 2.0
    counts.frame_without("late_depth")  # one late frame among fused ones: counted, not alarmed on
    assert counts.snapshot()["failing"] is False
    clock[0] = 6.5
    counts.frame_without("late_depth")  # nothing fused for 5.5 s and still failing
    assert counts.snapshot()["failing"] is True


def test_camera_info_with_the_frames_stamp_else_the_newest() -> None:
    from robot_instseg.node.depth_pairing import with_stamp_or_newest

    infos = [(1, "a"), (2, "b"), (2, "b2"), (3, "c")]
    assert with_stamp_or_newest(infos, 2) == "b2"
    assert with_stamp_or_newest(infos, 9) == "c"
    assert with_stamp_or_newest([], 1) is None


def test_a_frame_waits_for_its_own_camera_info_once_the_driver_stamps_one_per_frame() -> None:
    from robot_instseg.node.depth_pairing import CameraInfos

    infos: CameraInfos[str] = CameraInfos()
    infos.add(5, "fixed calibration")
    started = time.monotonic()
    assert infos.for_frame(10, time.monotonic() + 5.0) == "fixed calibration"  # stamps never matched: no wait
    assert time.monotonic() - started < 1.0 and not infos.per_frame
    infos.add(10, "frame 10")
    assert infos.for_frame(10, time.monotonic() + 5.0) == "frame 10" and infos.per_frame
    # Frame 11's CameraInfo arrives after its depth: the frame waits for it, not for frame 10's.
    threading.Timer(0.05, infos.add, (11, "frame 11")).start()
    assert infos.for_frame(11, time.monotonic() + 5.0) == "frame 11"
    started = time.monotonic()
    assert infos.for_frame(12, time.monotonic() + 0.05) == "frame 11"  # never came: the newest, at the deadline
    assert 0.04 <= time.monotonic() - started < 1.0
    infos.add(14, "frame 14")
    assert infos.for_frame(13, time.monotonic() + 5.0) == "frame 14"  # the stream is past frame 13: no wait


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _stream(lag: DepthLag, clock: _Clock, lags_s: list[float], first_sec: int = 0, period_s: float = 0.2) -> None:
    """Colour frames one period apart, each one's depth ``lags_s[i]`` after it (negative: before)."""
    for i, lag_s in enumerate(lags_s):
        stamp = (first_sec + i) * 1_000_000_000
        clock.now += period_s
        events = sorted([(clock.now, "colour"), (clock.now + lag_s, "depth")])
        for at, kind in events:
            getattr(lag, kind)(stamp, at)


def test_the_wait_learns_a_depth_stream_that_trails_colour() -> None:
    clock = _Clock()
    lag = DepthLag(clock=clock)
    assert lag.wait_s(0.03, 0.15) == 0.03  # nothing learned yet: the floor
    _stream(lag, clock, [0.040] * 4)
    assert lag.wait_s(0.03, 0.15) == 0.03 and lag.high_lag_s() is None  # fewer than five samples
    _stream(lag, clock, [0.036, 0.040, 0.044, 0.038, 0.042, 0.041], first_sec=10)
    assert abs(lag.wait_s(0.03, 0.15) - (lag.high_lag_s() + 0.005)) < 1e-9
    assert 0.044 < lag.wait_s(0.03, 0.15) < 0.05


def test_the_cap_holds_the_floor_stays_and_old_lags_are_forgotten() -> None:
    clock = _Clock()
    lag = DepthLag(clock=clock)
    _stream(lag, clock, [0.14] * 10)  # depth 140 ms behind: within the cap, waited for
    assert abs(lag.wait_s(0.03, 0.15) - 0.145) < 1e-9
    assert lag.wait_s(0.03, 0.12) == 0.03  # past a 120 ms cap: no wait within it catches them, the floor
    assert lag.wait_s(0.2, 0.1) == 0.1  # a cap under the floor still caps
    _stream(lag, clock, [0.4] * 10, first_sec=20)  # stragglers far past the cap (repairs) do not move the wait
    assert abs(lag.wait_s(0.03, 0.15) - 0.145) < 1e-9 and lag.high_lag_s() > 0.3
    clock.now += LAG_WINDOW_S + 1  # silence: the old lags are no longer recent
    assert lag.high_lag_s() is None and lag.wait_s(0.03, 0.15) == 0.03
    _stream(lag, clock, [-0.1] * 10, first_sec=50)  # depth ahead of colour: no need to wait past the floor
    assert lag.wait_s(0.03, 0.15) == 0.03 and lag.high_lag_s() < 0


def test_a_depth_frame_that_came_after_its_colour_frame_was_given_up_still_teaches() -> None:
    clock = _Clock()
    lag = DepthLag(clock=clock, max_skew_ns=5_000_000)
    for i in range(6):
        lag.colour(i * 1_000_000_000, clock.now)  # the worker gave up on each after 30 ms ...
        clock.now += 0.08
        lag.depth(i * 1_000_000_000 + 2_000_000, clock.now)  # ... the depth came 80 ms after, 2 ms skewed
        clock.now += 0.12
    assert abs(lag.high_lag_s() - 0.08) < 1e-6
    lag.depth(99 * 1_000_000_000, clock.now)  # a depth frame no colour frame claims teaches nothing
    assert len(lag.recent()) == 6


def test_share_with_3d_over_the_last_minute_leaves_out_frames_without_a_stream() -> None:
    clock = _Clock()
    counts = DepthCounts(clock=clock)
    assert counts.snapshot()["recent_share"] is None
    for _ in range(3):
        counts.fused_frame()
    counts.frame_without(LATE)
    counts.frame_without(NO_DEPTH)  # no depth stream: not a miss
    snap = counts.snapshot()
    assert snap["recent_share"] == 0.75 and snap["recent_frames"] == 4
    clock.now += RECENT_SHARE_S + 1
    counts.fused_frame()
    assert counts.snapshot()["recent_share"] == 1.0 and counts.snapshot()["recent_frames"] == 1
