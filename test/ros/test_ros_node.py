"""seg_node end to end: real processes over loopback DDS, each test in its own ROS domain.

The node runs through its ``seg_node`` entry point with config/params.yaml; frames come
from a second process (test/procs/publish_frames.py); this test process is the third
participant that reads the outputs, diagnostics, lifecycle state and parameters.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from ros_harness import (
    RosClient,
    SegNodeProcess,
    latest_status,
    publish,
    set_parameter,
    start_node,
    values,
    wait_for,
    wait_subscribed,
)
from seg_models import known_instances_model
from sensor_msgs.msg import Image

from robot_instseg_msgs.msg import InstanceArray


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return known_instances_model(tmp_path / "known.onnx")


def labels_array(msg: Image) -> np.ndarray:
    assert msg.encoding == "mono16"
    return np.frombuffer(bytes(msg.data), np.uint16).reshape(msg.height, msg.step // 2)[:, :msg.width]


def label_image_from_instances(msg: InstanceArray) -> np.ndarray:
    out = np.zeros((msg.image_height, msg.image_width), np.uint16)
    for inst in msg.instances:
        m = inst.mask
        assert m.encoding == "mono8" and (m.width, m.height) == (inst.bbox.width, inst.bbox.height)
        crop = np.frombuffer(bytes(m.data), np.uint8).reshape(m.height, m.step)[:, :m.width] > 0
        region = out[inst.bbox.y_offset:inst.bbox.y_offset + m.height, inst.bbox.x_offset:inst.bbox.x_offset + m.width]
        assert not (region[crop] > 0).any(), "instance masks overlap: they must be the visible parts"
        region[crop] = inst.id
    return out


@pytest.mark.parametrize("pipeline", ["auto", "device"])  # device: engine.device on CPU torch, same output
def test_frames_in_instances_and_labels_out_with_the_input_header(domain_id, tmp_path, model, ros, pipeline) -> None:
    node = start_node(domain_id, tmp_path, model_path=model, pipeline=pipeline)
    try:
        instances = ros.collect(InstanceArray, node.topic("instances"))
        labels = ros.collect(Image, node.topic("labels"))
        wait_subscribed(ros, node)
        sent = publish(domain_id, node.topic("image"), "good:6", rate=4)
        assert wait_for(lambda: len(instances) >= 4 and len(labels) >= 4, 20), node.log()
        stamps = {f["sec"] for f in sent}
        by_stamp = {m.header.stamp.sec: m for m in labels}
        for msg in instances:
            assert msg.header.stamp.sec in stamps and msg.header.stamp.nanosec == 0
            assert msg.header.frame_id == f"cam_{msg.header.stamp.sec - 100}"
            assert (msg.image_width, msg.image_height) == (640, 480)
            assert [i.class_name for i in msg.instances] == ["cup", "bowl", "box"]
            assert [i.id for i in msg.instances] == [1, 2, 3]
            assert all(np.isnan(i.centroid.x) and not i.has_3d for i in msg.instances)
            label_msg = by_stamp[msg.header.stamp.sec]
            assert label_msg.header.frame_id == msg.header.frame_id
            got = labels_array(label_msg)
            np.testing.assert_array_equal(got, label_image_from_instances(msg))
            # The cup (0.9) owns the overlap; the bowl keeps only what is visible of it.
            assert got[200, 250] == 1 and got[300, 350] == 2 and got[400, 500] == 3
        assert node.alive()
        assert f"{ {'auto': 'host', 'device': 'cpu'}[pipeline]} pipeline" in node.log()  # the one asked for ran
    finally:
        node.stop()


def play_plan(ros, node, domain_id, plan: str, topic: str = "image", after_index: int = 0, served: int = 1):
    """Play ``plan`` into the node and wait until ``served`` good frames after ``after_index`` came out:
    a node that survived what came before. Returns the InstanceArrays and diagnostics seen."""
    instances = ros.collect(InstanceArray, node.topic("instances"))
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
    wait_subscribed(ros, node, topic)
    sent = publish(domain_id, node.topic(topic), plan, rate=4)
    trailing = {f["sec"] for f in sent if f["label"] == "good" and f["index"] > after_index}
    assert wait_for(lambda: sum(m.header.stamp.sec in trailing for m in instances) >= served, 20), node.log()
    return instances, diagnostics


def diagnostic_count(diagnostics, node, key: str) -> int:
    return int(values(latest_status(diagnostics, node.fqn)).get(key, 0))


def test_malformed_raw_frames_are_counted_and_good_frames_still_segmented(domain_id, tmp_path, model, ros) -> None:
    node = start_node(domain_id, tmp_path, model_path=model)
    try:
        instances, diagnostics = play_plan(ros, node, domain_id, "bad_raw", after_index=6)
        assert wait_for(lambda: diagnostic_count(diagnostics, node, "inputs_rejected") >= 5, 10)
        v = values(latest_status(diagnostics, node.fqn))
        assert int(v["rejected_encoding"]) == 1 and int(v["rejected_step"]) == 1
        assert int(v["rejected_data_size"]) == 2 and int(v["rejected_empty"]) == 1
        assert int(v["frame_size_changes"]) >= 1
        assert any(m.image_width == 320 for m in instances), "the 320x240 frame is segmented at its own size"
        log = node.log()
        assert "rgb_fancy" in log and "is not supported" in log and "frame skipped, node keeps running" in log
        assert "changed from 640x480 to 320x240" in log
        assert node.alive()
    finally:
        node.stop()


def test_corrupt_and_truncated_jpeg_are_rejected_on_compressed_transport(domain_id, tmp_path, model, ros) -> None:
    node = start_node(domain_id, tmp_path, model_path=model, image_transport="compressed")
    try:
        _, diagnostics = play_plan(ros, node, domain_id, "bad_compressed", "image/compressed", after_index=3)
        assert wait_for(lambda: diagnostic_count(diagnostics, node, "rejected_compressed") >= 3, 10), node.log()
        status = latest_status(diagnostics, node.fqn)
        assert status.level == DiagnosticStatus.WARN and "rejected" in status.message
        assert "truncated" in node.log()
        assert node.alive()
    finally:
        node.stop()


def test_hostile_raw_frames_never_stop_the_worker(domain_id, tmp_path, model, ros) -> None:
    """A size change (a warning) then a 20000x1 frame used to kill the worker through the logger;
    a frame over max_input_pixels is refused before it is decoded."""
    node = start_node(domain_id, tmp_path, model_path=model, max_input_pixels=1_000_000)
    try:
        instances, diagnostics = play_plan(ros, node, domain_id, "hostile_raw", after_index=3, served=3)
        assert any(m.image_width == 20000 and m.image_height == 1 for m in instances), "the sliver is segmented"
        assert wait_for(lambda: diagnostic_count(diagnostics, node, "rejected_too_large") == 1, 10), node.log()
        v = values(latest_status(diagnostics, node.fqn))
        assert v["inference_errors"] == "0" and v["worker_alive"] == "True", v
        assert "over max_input_pixels 1000000" in node.log()
        assert node.alive()
    finally:
        node.stop()


def test_decompression_bombs_are_refused_from_their_headers(domain_id, tmp_path, model, ros) -> None:
    node = start_node(domain_id, tmp_path, model_path=model, image_transport="compressed")
    try:
        _, diagnostics = play_plan(ros, node, domain_id, "hostile_compressed", "image/compressed", after_index=2,
                                   served=3)
        assert wait_for(lambda: diagnostic_count(diagnostics, node, "rejected_too_large") == 2, 10), node.log()
        assert "65000x65000" in node.log()  # the second refusal falls in the same 5 s log throttle...
        assert "30000x30000" in values(latest_status(diagnostics, node.fqn))["last_rejection"]  # ...diagnostics name it
        assert node.alive()
    finally:
        node.stop()


def test_a_camera_whose_qos_cannot_connect_is_an_error_that_says_what_to_set(domain_id, tmp_path, model,
                                                                             ros) -> None:
    node = start_node(domain_id, tmp_path, model_path=model)  # input_reliability reliable
    try:
        instances = ros.collect(InstanceArray, node.topic("instances"))
        diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
        wait_subscribed(ros, node)
        publish(domain_id, node.topic("image"), "good:3", rate=4, reliability="best_effort")
        assert wait_for(lambda: (latest_status(diagnostics, node.fqn) is not None and
                                 "incompatible" in latest_status(diagnostics, node.fqn).message), 15), node.log()
        status = latest_status(diagnostics, node.fqn)
        assert status.level == DiagnosticStatus.ERROR and "input_reliability to best_effort" in status.message
        assert values(status)["incompatible_qos_policy"] == "RELIABILITY" and instances == []
        assert node.alive()
    finally:
        node.stop()


def _lifecycle_state(ros: RosClient, node: SegNodeProcess) -> str:
    return ros.call(GetState, f"{node.fqn}/get_state", GetState.Request()).current_state.label


def _transition(ros: RosClient, node: SegNodeProcess, transition_id: int) -> bool:
    request = ChangeState.Request()
    request.transition.id = transition_id
    return ros.call(ChangeState, f"{node.fqn}/change_state", request).success


def test_missing_or_broken_model_keeps_the_node_up_and_it_recovers(domain_id, tmp_path, model, ros) -> None:
    not_a_model = tmp_path / "notes.onnx"
    not_a_model.write_text("this is not a model")
    missing = tmp_path / "missing" / "model.onnx"
    node = start_node(domain_id, tmp_path, model_path=missing)
    broken = SegNodeProcess(domain_id, {"model_path": not_a_model, "input_reliability": "reliable"}, name="broken",
                            log_dir=tmp_path)
    try:
        diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
        for proc, path in ((node, missing), (broken, not_a_model)):
            assert wait_for(lambda: latest_status(diagnostics, proc.fqn) is not None, 30), proc.log()
            status = latest_status(diagnostics, proc.fqn)
            assert status.level == DiagnosticStatus.ERROR and str(path) in status.message, status.message
            assert "model_path" in status.message
            assert proc.alive() and _lifecycle_state(ros, proc) == "unconfigured"
            assert str(path) in proc.log()
        # Point it at a real model and bring it up through the lifecycle services.
        assert set_parameter(ros, node, "model_path", str(model)) == (True, "")
        assert _transition(ros, node, Transition.TRANSITION_CONFIGURE)
        assert _transition(ros, node, Transition.TRANSITION_ACTIVATE)
        assert _lifecycle_state(ros, node) == "active"
        instances = ros.collect(InstanceArray, node.topic("instances"))
        wait_subscribed(ros, node)
        publish(domain_id, node.topic("image"), "good:3", rate=4)
        assert wait_for(lambda: len(instances) >= 1, 20), node.log()
    finally:
        node.stop()
        broken.stop()


def test_params_file_with_wrong_types_falls_back_to_defaults_and_says_so(domain_id, tmp_path, model, ros) -> None:
    params = tmp_path / "bad_params.yaml"
    params.write_text(f"/**:\n  ros__parameters:\n    model_path: '{model}'\n    score_threshold: 'high'\n"
                      f"    max_detections: -3\n    publish_labels: 7\n    input_reliability: reliable\n")
    node = SegNodeProcess(domain_id, {}, params_file=params, log_dir=tmp_path)
    try:
        diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
        instances = ros.collect(InstanceArray, node.topic("instances"))
        wait_subscribed(ros, node)
        publish(domain_id, node.topic("image"), "good:3", rate=4)
        assert wait_for(lambda: len(instances) >= 1, 20), node.log()
        assert len(instances[-1].instances) == 3  # default score_threshold 0.25 in force
        status = latest_status(diagnostics, node.fqn)
        assert status.level == DiagnosticStatus.WARN and "params file" in status.message
        for name in ("score_threshold", "max_detections", "publish_labels"):
            assert name in values(status)["params_refused"] and name in node.log()
    finally:
        node.stop()


def test_frames_faster_than_the_model_drop_stale_ones_and_keep_the_newest(domain_id, tmp_path, model, ros) -> None:
    node = start_node(domain_id, tmp_path, model_path=model, max_rate_hz=3.0)
    try:
        instances = ros.collect(InstanceArray, node.topic("instances"))
        diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
        wait_subscribed(ros, node)
        sent = publish(domain_id, node.topic("image"), "good:40", rate=25)
        last = max(f["sec"] for f in sent)
        assert wait_for(lambda: instances and instances[-1].header.stamp.sec == last, 10), \
            "the newest frame, still waiting when the worker was free, must be the one processed"
        stamps = [m.header.stamp.sec for m in instances]
        assert all(b > a for a, b in zip(stamps, stamps[1:])), stamps
        assert len(stamps) < len(sent) / 2

        def accounted() -> bool:  # once idle, every received frame was either processed or dropped
            v = values(latest_status(diagnostics, node.fqn))
            return bool(v) and int(v["frames_processed"]) == len(stamps) and \
                int(v["frames_processed"]) + int(v["frames_dropped"]) == int(v["frames_received"])

        assert wait_for(accounted, 10), values(latest_status(diagnostics, node.fqn))
        v = values(latest_status(diagnostics, node.fqn))
        assert int(v["frames_dropped"]) > len(sent) / 3 and int(v["frames_received"]) <= len(sent)
    finally:
        node.stop()


def test_lifecycle_transitions_and_no_work_while_inactive(domain_id, tmp_path, model, ros) -> None:
    node = start_node(domain_id, tmp_path, model_path=model)
    try:
        instances = ros.collect(InstanceArray, node.topic("instances"))
        wait_subscribed(ros, node)
        assert _lifecycle_state(ros, node) == "active"
        assert _transition(ros, node, Transition.TRANSITION_DEACTIVATE)
        assert _lifecycle_state(ros, node) == "inactive"
        assert wait_for(lambda: ros.node.count_subscribers(node.topic("image")) == 0, 10)
        time.sleep(0.5)
        cpu_before = node.cpu_seconds()
        publish(domain_id, node.topic("image"), "good:1", rate=4)  # nobody listens: it must not be processed
        time.sleep(2.0)
        assert node.cpu_seconds() - cpu_before < 0.5, "an inactive node must not work"
        assert instances == []
        assert _transition(ros, node, Transition.TRANSITION_ACTIVATE)
        wait_subscribed(ros, node)
        publish(domain_id, node.topic("image"), "good:3", rate=4)
        assert wait_for(lambda: len(instances) >= 1, 20), node.log()
        assert _transition(ros, node, Transition.TRANSITION_DEACTIVATE)
        assert _transition(ros, node, Transition.TRANSITION_CLEANUP)
        assert _lifecycle_state(ros, node) == "unconfigured"
        assert wait_for(lambda: ros.node.count_publishers(node.topic("instances")) == 0, 10)
        assert _transition(ros, node, Transition.TRANSITION_CONFIGURE)
        assert _transition(ros, node, Transition.TRANSITION_ACTIVATE)
        assert _lifecycle_state(ros, node) == "active"
    finally:
        node.stop()


def test_parameters_change_at_run_time_and_bad_values_are_refused(domain_id, tmp_path, model, ros) -> None:
    node = start_node(domain_id, tmp_path, model_path=model)
    try:
        instances = ros.collect(InstanceArray, node.topic("instances"))
        labels = ros.collect(Image, node.topic("labels"))
        wait_subscribed(ros, node)

        def classes_after_change() -> list[str]:
            instances.clear()
            publish(domain_id, node.topic("image"), "good:2", rate=4)
            assert wait_for(lambda: len(instances) >= 1, 20), node.log()
            return [i.class_name for i in instances[-1].instances]

        assert set_parameter(ros, node, "score_threshold", 0.85) == (True, "")
        assert classes_after_change() == ["cup"]
        assert set_parameter(ros, node, "score_threshold", 0.25) == (True, "")
        assert set_parameter(ros, node, "class_filter", "box,0") == (True, "")
        assert classes_after_change() == ["cup", "box"]
        for name, value in (("tracking", False), ("track_low_score", 0.05), ("tracking", True)):  # weak decode
            assert set_parameter(ros, node, name, value) == (True, "")  # off, then from 0.05: never published
            assert classes_after_change() == ["cup", "box"]
        ok, reason = set_parameter(ros, node, "class_filter", "spoon")
        assert not ok and "spoon" in reason and "cup" in reason
        ok, reason = set_parameter(ros, node, "score_threshold", 2.0)
        assert not ok and "[0, 1]" in reason
        ok, reason = set_parameter(ros, node, "max_detections", 0)
        assert not ok and "max_detections" in reason
        assert set_parameter(ros, node, "max_detections", 1) == (True, "")
        assert classes_after_change() == ["cup"]
        assert set_parameter(ros, node, "publish_labels", False) == (True, "")
        labels.clear()
        classes_after_change()
        time.sleep(0.5)
        assert labels == []
        ok, reason = set_parameter(ros, node, "class_filter", "999999")
        assert not ok and "999999" in reason and "0..2" in reason
        for bad in (1e-9, 1e-300, -1.0, float("nan"), 1e9):
            ok, reason = set_parameter(ros, node, "max_rate_hz", bad)
            assert not ok and "max_rate_hz must lie in [0.01, 1000]" in reason, (bad, reason)
        # A slow rate, then 0 again: the waiting worker wakes at once, not after the interval.
        assert set_parameter(ros, node, "max_rate_hz", 0.01) == (True, "")  # next frame due 100 s after the last
        instances.clear()
        publish(domain_id, node.topic("image"), "good:2", rate=4)
        time.sleep(0.5)
        assert instances == [], "max_rate_hz 0.01 holds the next frame back"
        assert set_parameter(ros, node, "max_rate_hz", 0.0) == (True, "")
        assert wait_for(lambda: len(instances) >= 1, 5), "setting 0 wakes the waiting worker"
        assert node.alive()
    finally:
        node.stop()
