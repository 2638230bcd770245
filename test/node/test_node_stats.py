"""The node's pure health logic, without DDS: stamps read from CDR, camera gaps, health verdicts."""

from __future__ import annotations

import numpy as np
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image

from robot_instseg.node.node_stats import ERROR, OK, WARN, NodeStats, StampGaps, cdr_stamp_ns, health


def test_stamp_is_read_from_the_serialized_image_without_deserializing() -> None:
    for msg in (Image(encoding="rgb8", height=1, width=1, step=3, data=b"abc"), CompressedImage(format="jpeg")):
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_123, 456_789
        msg.header.frame_id = "cam"
        assert cdr_stamp_ns(serialize_message(msg)) == 1_700_000_123 * 10**9 + 456_789
    assert cdr_stamp_ns(b"\x00\x01\x00") is None and cdr_stamp_ns(b"\x07" * 16) is None


def test_camera_rate_and_missing_frames_from_stamps() -> None:
    rng = np.random.default_rng(1)
    gaps = StampGaps()
    for k in range(200):
        if k % 4 == 0:  # three of every four frames never arrive
            continue
        gaps.add(int(k * 1e8 + rng.normal(0, 1e6)))  # 10 Hz with 1 ms jitter
    assert 9.5 < gaps.rate_hz() < 10.6
    assert 45 <= gaps.missing <= 52 and 0.2 < gaps.recent_loss() < 0.3
    steady = StampGaps()
    for k in range(50):
        steady.add(k * 33_333_333)
    steady.add(10 * 33_333_333)  # a replay restarting: backwards, no loss
    steady.add(100 * 10**9)  # a camera paused for 100 s: no loss either
    steady.add(100 * 10**9 + 33_333_333)
    assert steady.missing == 0 and steady.recent_loss() == 0.0 and 29 < steady.rate_hz() < 31


def _snapshot(**changes) -> dict:
    stats = NodeStats()
    stats.mark_started()
    snap = stats.snapshot()
    snap.update(changes)
    return snap


def test_health_errors_when_frames_arrive_and_none_is_segmented() -> None:
    assert health("active", _snapshot(seconds_since_input=0.1, seconds_since_segmented=1.0)).level == OK
    verdict = health("active", _snapshot(seconds_since_input=0.1, seconds_since_segmented=9.0, rejected=40,
                                         last_rejection="encoding 'xyz' is not supported"), stall_timeout_s=5.0)
    assert verdict.level == ERROR and "none was segmented for 9 s" in verdict.message and "xyz" in verdict.message
    stalled = health("active", _snapshot(seconds_since_input=0.1, seconds_since_segmented=9.0), stall_timeout_s=5.0)
    assert stalled.level == ERROR and "stalled" in stalled.message
    idle = health("active", _snapshot(seconds_since_input=60.0, seconds_since_segmented=60.0))
    assert idle.level == WARN and "no images received" in idle.message  # no input is not a stall


def test_health_errors_on_a_dead_worker_and_warns_on_transport_loss() -> None:
    dead = health("active", _snapshot(seconds_since_input=0.1, seconds_since_segmented=0.5, worker_restarts=1),
                  worker_alive=False)
    assert dead.level == ERROR and "worker is not running" in dead.message
    lossy = health("active", _snapshot(seconds_since_input=0.1, seconds_since_segmented=0.2, recent_loss=0.9,
                                       camera_rate_hz=10.0))
    assert lossy.level == WARN and "90%" in lossy.message and "reliable" in lossy.message


def test_health_names_an_incompatible_camera_qos() -> None:
    verdict = health("active", _snapshot(qos_incompatible="RELIABILITY", received=0))
    assert verdict.level == ERROR and "RELIABILITY" in verdict.message and "best_effort" in verdict.message
    served = health("active", _snapshot(qos_incompatible="RELIABILITY", received=10, seconds_since_input=0.1,
                                        seconds_since_segmented=0.1))
    assert served.level == OK  # another, compatible publisher is being served
