"""Per-camera state and the worker's fair turns, without rclpy (the DDS tests check the node wires them)."""

from __future__ import annotations

import collections
import threading

import pytest

from robot_instseg.node.camera_stream import (
    CameraStream,
    FairTurns,
    camera_key,
    cameras_problem,
    split_camera_key,
)
from robot_instseg.node.params import PARAMS_BY_NAME, spec_for

SETTINGS = {spec.name: spec.default for spec in PARAMS_BY_NAME.values()}


def _streams(*names: str, **overrides) -> tuple[list[CameraStream], dict]:
    settings = {**SETTINGS, **overrides}
    return [CameraStream(name, settings) for name in names], settings


def test_camera_names_are_checked() -> None:
    assert cameras_problem([]) is None and cameras_problem(["head", "wrist_1"]) is None
    assert "named more than once" in cameras_problem(["head", "head"])
    assert "not a camera name" in cameras_problem(["head/left"])
    assert "not a camera name" in cameras_problem(["1cam"])
    assert "at most 16" in cameras_problem([f"c{i}" for i in range(17)])
    assert "named more than once" in PARAMS_BY_NAME["cameras"].validate(["a", "a"])


def test_topics_and_per_camera_parameters() -> None:
    (single, head), settings = _streams("", "head", **{"head.max_rate_hz": 3.0})
    assert single.topic("image") == "~/image" and head.topic("image/compressed") == "~/head/image/compressed"
    assert single.label == "camera" and head.label == "head"
    assert head.setting(settings, "max_rate_hz") == 3.0 and single.setting(settings, "max_rate_hz") == 0.0
    assert head.setting(settings, "image_transport") == "raw"  # not set for the camera: the node's value
    assert camera_key("head", "depth_mode") == "head.depth_mode" and camera_key("", "depth_mode") == "depth_mode"
    assert split_camera_key("head.depth_mode") == ("head", "depth_mode")
    assert spec_for("head.max_rate_hz") is PARAMS_BY_NAME["max_rate_hz"]
    assert spec_for("head.score_threshold") is None  # thresholds belong to the one model, not to a camera
    assert "[0.01, 1000]" in spec_for("wrist.max_rate_hz").validate(-1.0)


def test_a_turn_takes_the_newest_frame_of_each_waiting_camera() -> None:
    streams, settings = _streams("a", "b", "c")
    streams[0].mailbox.put("a1")
    streams[0].mailbox.put("a2")  # a1 dropped: never older than the newest of its own camera
    streams[2].mailbox.put("c1")
    turn, _ = FairTurns().take(streams, settings, limit=4, now=0.0)
    assert [(s.name, item) for s, item in turn] == [("a", "a2"), ("c", "c1")]
    assert streams[0].mailbox.dropped == 1 and streams[2].mailbox.dropped == 0
    assert FairTurns().take(streams, settings, limit=4, now=0.0)[0] == []


def test_under_overload_every_camera_gets_the_same_share() -> None:
    """Four cameras always have a frame waiting and a turn holds two: each is served every second turn."""
    streams, settings = _streams("a", "b", "c", "d")
    turns, served = FairTurns(), collections.Counter()
    for step in range(100):
        for stream in streams:
            stream.mailbox.put(step)
        turn, _ = turns.take(streams, settings, limit=2, now=float(step))
        served.update(s.name for s, _ in turn)
    assert served == {"a": 50, "b": 50, "c": 50, "d": 50}


def test_a_fast_camera_never_starves_a_slow_one() -> None:
    """A 30 Hz and a 5 Hz camera, one frame a turn (a batch-1 model), the worker slower than the 30 Hz camera:
    every frame of the slow camera is served, the fast one gets the rest."""
    (fast, slow), settings = _streams("fast", "slow")
    turns, served = FairTurns(), collections.Counter()
    for tick in range(300):  # 300 ticks of 1/30 s; the worker takes one frame every other tick
        fast.mailbox.put(tick)
        if tick % 6 == 0:
            slow.mailbox.put(tick)
        if tick % 2 == 0:
            turn, _ = turns.take([fast, slow], settings, limit=1, now=tick / 30)
            served.update(s.name for s, _ in turn)
    assert served["slow"] == 50 and slow.mailbox.dropped == 0
    assert served["fast"] == 100


def test_max_rate_hz_per_camera_holds_a_camera_back_and_says_when_it_is_due() -> None:
    (a, b), settings = _streams("a", "b", **{"a.max_rate_hz": 2.0})
    turns = FairTurns()
    a.mailbox.put("a1")
    assert [s.name for s, _ in turns.take([a, b], settings, 4, now=10.0)[0]] == ["a"]
    a.mailbox.put("a2")
    b.mailbox.put("b1")
    turn, soonest = turns.take([a, b], settings, 4, now=10.1)
    assert [s.name for s, _ in turn] == ["b"]
    assert a.mailbox.waiting
    turn, soonest = turns.take([a, b], settings, 4, now=10.1)
    assert turn == [] and soonest == pytest.approx(0.4)
    assert [item for _, item in turns.take([a, b], settings, 4, now=10.5)[0]] == ["a2"]


def test_one_event_wakes_the_worker_for_any_camera() -> None:
    arrived = threading.Event()
    streams = [CameraStream(name, SETTINGS, on_frame=arrived.set) for name in ("a", "b")]
    streams[1].mailbox.put("frame")
    assert arrived.is_set()
    streams[1].stop()
    assert not streams[1].mailbox.waiting and streams[1].reliability == ""


def test_max_batch_auto_batches_on_a_gpu_runtime_only() -> None:
    from types import SimpleNamespace

    from robot_instseg.node.camera_stream import effective_max_batch

    assert effective_max_batch(0, SimpleNamespace(runtime_on_cuda=True)) == 4
    assert effective_max_batch(0, SimpleNamespace(runtime_on_cuda=False)) == 1
    assert effective_max_batch(0, None) == 1
    assert effective_max_batch(3, SimpleNamespace(runtime_on_cuda=False)) == 3  # set: taken as it is
