"""The node's rclpy-free decisions, tested directly: the one-slot mailbox, the log throttle and
class-filter parsing (the DDS tests only check that the node wires them)."""

from __future__ import annotations

import threading
import time

import pytest

from robot_instseg.engine.class_names import parse_class_filter
from robot_instseg.node.frame_mailbox import FrameMailbox
from robot_instseg.node.node_stats import LogThrottle


def test_mailbox_keeps_only_the_newest_frame_and_counts_the_drops() -> None:
    box: FrameMailbox[int] = FrameMailbox()
    assert box.put(1) is False
    assert box.put(2) is True  # 1 was never taken: dropped
    assert box.put(3) is True
    assert (box.received, box.dropped) == (3, 2)
    assert box.take(timeout=0) == 3
    assert box.take(timeout=0.01) is None  # empty: waits, then gives up


def test_mailbox_take_wakes_on_put_and_on_close() -> None:
    box: FrameMailbox[str] = FrameMailbox()
    got: list = []
    taker = threading.Thread(target=lambda: got.append(box.take(timeout=10)))
    taker.start()
    time.sleep(0.05)
    box.put("frame")
    taker.join(timeout=5)
    assert got == ["frame"]

    taker = threading.Thread(target=lambda: got.append(box.take(timeout=10)))
    taker.start()
    time.sleep(0.05)
    started = time.monotonic()
    box.close()
    taker.join(timeout=5)
    assert not taker.is_alive() and got[-1] is None
    assert time.monotonic() - started < 5  # woken by close, not by the 10 s timeout
    box.reopen()
    box.put("again")
    assert box.take(timeout=0) == "again"


def test_log_throttle_lets_one_line_per_key_per_period_and_counts_the_rest() -> None:
    now = [100.0]
    throttle = LogThrottle(period=5.0, clock=lambda: now[0])
    assert throttle.allow("bad_frame") == 0
    assert throttle.allow("bad_frame") is None
    assert throttle.allow("bad_frame") is None
    assert throttle.allow("other") == 0  # keys are independent
    now[0] += 4.9
    assert throttle.allow("bad_frame") is None
    now[0] += 0.2
    assert throttle.allow("bad_frame") == 3  # the three held back since the last line
    assert throttle.allow("bad_frame") is None


@pytest.mark.parametrize("text, expected", [
    ("", ()),
    ("cup", ("cup",)),
    ("cup, 2", ("cup", 2)),
    (" 0 ,bowl,, 17 ", (0, "bowl", 17)),
    ("mug-2,-1", ("mug-2", "-1")),  # only plain digits are ids; the rest are names
])
def test_class_filter_parsing(text: str, expected: tuple) -> None:
    assert parse_class_filter(text) == expected


def test_diagnostics_name_refused_parameters_and_every_rejection_reason() -> None:
    from robot_instseg.node.diagnostics import diagnostic_values, node_health
    from robot_instseg.node.node_stats import ERROR, OK, WARN, NodeStats

    healthy = NodeStats()
    healthy.frame_received(False)
    healthy.frame_done(30.0, 25.0, 2)
    snap = healthy.snapshot()
    assert node_health("active", snap, "", True, 5.0, []).level == OK
    refused = node_health("active", snap, "", True, 5.0, ["score_threshold must lie in [0, 1], got 7.0"])
    assert refused.level == WARN and "score_threshold must lie in [0, 1]" in refused.message
    broken = node_health("unconfigured", snap, "model.onnx: not found", True, 5.0, ["x"])
    assert broken.level == ERROR and "model.onnx" in broken.message  # a worse verdict is not hidden

    stats = NodeStats()
    stats.frame_rejected("too_large", "frame on /cam rejected: 9000x9000 is over max_input_pixels")
    stats.frame_rejected("too_large", "again")
    stats.frame_rejected("bad_step", "step too small")
    values = diagnostic_values(stats.snapshot(), "active", "m.onnx", "onnxruntime cpu", "yolo_seg", ["a", "b"], True)
    assert values["rejected_too_large"] == "2" and values["rejected_bad_step"] == "1"
    assert values["inputs_rejected"] == "3" and values["params_refused"] == "a; b"
    assert all(isinstance(v, str) for v in values.values())


def test_the_segmenter_decodes_weak_detections_only_for_an_active_tracker() -> None:
    """weak_score_threshold follows tracking and track_low_score (the Segmenter ignores it where it is not
    under score_threshold: test_device_pipeline)."""
    from robot_instseg.node.params import PARAMS
    from robot_instseg.node.tracking import weak_score_threshold

    defaults = {p.name: p.default for p in PARAMS}
    assert weak_score_threshold(defaults) == defaults["track_low_score"] < defaults["score_threshold"]
    assert weak_score_threshold({**defaults, "tracking": False}) is None
    assert weak_score_threshold({**defaults, "track_low_score": 0.3}) == 0.3


def test_tracking_diagnostics_say_whether_and_how_much_unpublished_detections_are_used() -> None:
    import numpy as np

    from robot_instseg.engine.types import Detections
    from robot_instseg.node.params import PARAMS
    from robot_instseg.node.tracking import NodeTracking

    def frame(score: float) -> Detections:
        mask = np.zeros((1, 60, 80), bool)
        mask[0, 20:40, 20:40] = True
        return Detections.from_full_masks(mask, [score], [0])

    settings = {**{p.name: p.default for p in PARAMS}, "track_min_hits": 1}
    tracking = NodeTracking(settings)
    tracking.assign(frame(0.9), 0.0, settings)
    tracking.assign(Detections.empty((60, 80)), 0.1, settings, weak=frame(0.2))  # the object dips under 0.25 for a frame
    values = tracking.diagnostic_values(0.1)
    assert values["tracking_unpublished_from_score"] == "0.10" and values["tracking_unpublished_last_frame"] == "1"
    assert values["tracks_kept_by_unpublished"] == "1" and values["tracks_active"] == "1"
    assert tracking.diagnostic_values(None)["tracking_unpublished_from_score"] == "off"  # the Segmenter decodes none
