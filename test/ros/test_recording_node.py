"""seg_node recording over real DDS, read back with rosbags' own reader.

The node (its ``seg_node`` entry point) records; a second process publishes planned frames;
this process collects the node's InstanceArrays, calls the services and sets parameters.
Which frames each mode must capture is recomputed here from the InstanceArrays received
(their stamps and scores), and the bag must hold exactly those, byte for byte.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.serialization import serialize_message
from ros_env import REPO, ros_env
from ros_harness import (
    PUBLISHER,
    latest_status,
    publish,
    set_parameters,
    start_node,
    wait_for,
    wait_subscribed,
)
from seg_models import brightness_scored_model, known_instances_model
from std_srvs.srv import SetBool, Trigger

from robot_instseg.recording.repair import needs_repair, repair_bag
from robot_instseg_msgs.msg import InstanceArray

sys.path.insert(0, str(REPO / "test" / "procs"))
from publish_frames import frame_message, plan  # noqa: E402

IMAGE_TOPIC = "/seg/image"


def read_bags(directory: Path, settle: float = 10.0) -> dict:
    """{topic: [(bag timestamp, raw CDR bytes, message)]} over every bag in ``directory``, via rosbags.

    A parameter change closes the previous bag in the background: wait until it is closed."""
    from rosbags.highlevel import AnyReader

    wait_for(lambda: not directory.is_dir() or not any(needs_repair(p) for p in directory.iterdir()), settle)

    bags = sorted(p for p in directory.iterdir() if p.is_dir() and (p / "metadata.yaml").is_file()) \
        if directory.is_dir() else []
    out: dict = {}
    if not bags:
        return out
    with AnyReader(bags) as reader:
        for connection, timestamp, data in reader.messages():
            out.setdefault(connection.topic, []).append(
                (timestamp, bytes(data), reader.deserialize(data, connection.msgtype)))
    return out


def recorded_secs(bag: dict) -> list[int]:
    return [msg.header.stamp.sec for _, _, msg in bag.get(IMAGE_TOPIC, [])]


def zero_image_padding(cdr: bytes) -> bytes:
    """A sensor_msgs/Image CDR buffer with its alignment padding zeroed.

    CDR pads before each 4-byte field; serializers leave whatever was in memory there (we saw
    non-zero padding from rclpy), so two correct serializations of one message may differ
    only in those bytes. Everything else, pixel data included, must be identical."""
    out = bytearray(cdr)
    pos = 4  # encapsulation header; alignment counts from here

    def align(n: int) -> None:
        nonlocal pos
        while (pos - 4) % n:
            out[pos] = 0
            pos += 1

    def u32() -> int:
        nonlocal pos
        align(4)
        value = int.from_bytes(out[pos:pos + 4], "little")
        pos += 4
        return value

    def string() -> None:
        nonlocal pos
        length = u32()
        pos += length

    u32(), u32(), string()  # header: stamp sec, nanosec, frame_id
    u32(), u32(), string()  # height, width, encoding
    pos += 1  # is_bigendian
    u32()  # step
    length = u32()
    assert pos + length == len(out), "Image CDR layout not understood"
    return bytes(out)


def assert_frames_byte_equal(bag: dict, plan_name: str, first_sec: int) -> None:
    """Every recorded frame is exactly the published message (CDR bytes) with its InstanceArray."""
    frames = plan(plan_name)
    instances = {m.header.stamp.sec: m for _, _, m in bag.get("/seg/instances", [])}
    reasons = {json.loads(m.data)["stamp"]["sec"] for _, _, m in bag.get("/seg/capture_reason", [])}
    for _, data, msg in bag.get(IMAGE_TOPIC, []):
        index = msg.header.stamp.sec - first_sec
        label, kind, fields = frames[index]
        published = bytes(serialize_message(frame_message(index, kind, fields, first_sec)))
        assert zero_image_padding(data) == zero_image_padding(published), f"frame {index} differs"
        assert msg.header.stamp.sec in instances, f"frame {msg.header.stamp.sec} recorded without its InstanceArray"
        assert msg.header.stamp.sec in reasons, f"frame {msg.header.stamp.sec} recorded without a capture reason"
        assert instances[msg.header.stamp.sec].header.frame_id == msg.header.frame_id


def phase(ros, domain_id, node, seen: list, plan_name: str, first_sec: int, rate: float = 5.0) -> list:
    """Publish a plan and wait until the node has segmented every frame; return their InstanceArrays."""
    before = len(seen)
    sent = publish(domain_id, node.topic("image"), plan_name, rate=rate, first_sec=first_sec)
    if not wait_for(lambda: len(seen) - before >= len(sent), 20):
        arrived = [m.header.stamp.sec for m in seen[before:]]
        raise AssertionError(f"not every frame segmented: sent {[first_sec + i for i in range(len(sent))]}, "
                             f"InstanceArrays for {arrived}; log:\n{node.log()}")
    return seen[before:]


def test_each_mode_records_exactly_its_frames_byte_equal(domain_id, tmp_path, ros) -> None:
    model = brightness_scored_model(tmp_path / "scored.onnx")
    dirs = {mode: tmp_path / mode for mode in ("all", "interval", "uncertain", "manual", "off")}
    node = start_node(domain_id, tmp_path, model_path=model, record_mode="all", record_dir=str(dirs["all"]),
                      record_max_rate_hz=0.0)
    try:
        seen = ros.collect(InstanceArray, node.topic("instances"))
        wait_subscribed(ros, node)

        got = phase(ros, domain_id, node, seen, "good:5", 100)  # all: every segmented frame
        assert set_parameters(ros, node, record_mode="interval", record_interval_s=3.0,
                              record_dir=str(dirs["interval"])) == (True, "")
        bag = read_bags(dirs["all"])
        assert recorded_secs(bag) == [m.header.stamp.sec for m in got] == list(range(100, 105))
        assert_frames_byte_equal(bag, "good:5", 100)
        assert [json.loads(m.data)["reason"] for _, _, m in bag["/seg/capture_reason"]] == ["all"] * 5

        got = phase(ros, domain_id, node, seen, "good:7", 200)  # interval: one every 3 s of camera time
        assert set_parameters(ros, node, record_mode="uncertain", record_score_low=0.4, record_score_high=0.6,
                              record_unseen_class_s=2.5, record_dir=str(dirs["uncertain"])) == (True, "")
        expected, last = [], None
        for m in got:
            if last is None or m.header.stamp.sec - last >= 3:
                expected.append(m.header.stamp.sec)
                last = m.header.stamp.sec
        bag = read_bags(dirs["interval"])
        assert recorded_secs(bag) == expected == [200, 203, 206]
        assert_frames_byte_equal(bag, "good:7", 200)

        # uncertain: the box's score follows each frame's grey level (brightness_scored_model)
        greys = "grey:200,120,200,30,30,30,200,125,200"
        got = phase(ros, domain_id, node, seen, greys, 300)
        assert set_parameters(ros, node, record_mode="manual", record_dir=str(dirs["manual"])) == (True, "")
        expected, class_seen = [], {}
        for m in got:
            sec = m.header.stamp.sec
            in_band = any(0.4 <= i.score <= 0.6 for i in m.instances)
            unseen = any(i.class_name not in class_seen or sec - class_seen[i.class_name] >= 2.5 for i in m.instances)
            if in_band or unseen:
                expected.append(sec)
            class_seen.update({i.class_name: sec for i in m.instances})
        bag = read_bags(dirs["uncertain"])
        # 300: first sight of every class; 301 and 307: box in the band; 306: box back after 3 s unseen.
        assert recorded_secs(bag) == expected == [300, 301, 306, 307]
        assert_frames_byte_equal(bag, greys, 300)
        reasons = [json.loads(m.data)["reason"].split(":")[0] for _, _, m in bag["/seg/capture_reason"]]
        assert reasons == ["new_class", "uncertain", "unseen_class", "uncertain"]

        phase(ros, domain_id, node, seen, "good:3", 400)  # manual: nothing until asked
        answer = ros.call(Trigger, f"{node.fqn}/capture", Trigger.Request())
        assert answer.success and "402" in answer.message, answer.message
        assert ros.call(SetBool, f"{node.fqn}/record", SetBool.Request(data=True)).success
        phase(ros, domain_id, node, seen, "good:3", 500)
        assert ros.call(SetBool, f"{node.fqn}/record", SetBool.Request(data=False)).success
        phase(ros, domain_id, node, seen, "good:2", 600)
        assert set_parameters(ros, node, record_mode="off", record_dir=str(dirs["off"])) == (True, "")
        bag = read_bags(dirs["manual"])
        assert recorded_secs(bag) == [402, 500, 501, 502]
        reasons = [json.loads(m.data)["reason"] for _, _, m in bag["/seg/capture_reason"]]
        assert reasons == ["manual_capture"] + ["manual_record"] * 3

        phase(ros, domain_id, node, seen, "good:3", 700)  # off
        node.proc.send_signal(signal.SIGTERM)
        node.proc.wait(20)
        assert read_bags(dirs["off"]) == {}
        assert not any(needs_repair(p) for d in dirs.values() if d.is_dir() for p in d.iterdir()), \
            "SIGTERM must close every bag cleanly"
        metadata = (next(dirs["manual"].iterdir()) / "metadata.yaml").read_text()
        assert str(model) in metadata and "robot_instseg.model_sha256" in metadata
    finally:
        node.stop()


def test_sigkill_loses_at_most_the_last_two_seconds(domain_id, tmp_path, ros) -> None:
    model = known_instances_model(tmp_path / "known.onnx")
    record_dir = tmp_path / "bags"
    node = start_node(domain_id, tmp_path, model_path=model, record_mode="all", record_dir=str(record_dir),
                      record_max_rate_hz=0.0)
    arrived: dict[int, float] = {}
    try:
        ros.node.create_subscription(InstanceArray, node.topic("instances"),
                                     lambda m: arrived.setdefault(m.header.stamp.sec, time.monotonic()), 50)
        wait_subscribed(ros, node)
        publisher = subprocess.Popen([sys.executable, str(PUBLISHER), node.topic("image"), "good:40", "5"],
                                     env=ros_env(domain_id), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert wait_for(lambda: len(arrived) >= 20, 40), node.log()  # 4 s of frames: >= 5 are over 2 s old
            node.proc.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            node.proc.wait(10)
        finally:
            publisher.kill()
            publisher.wait(10)
    finally:
        node.stop()
    bags = [p for p in record_dir.iterdir() if p.is_dir()]
    assert len(bags) == 1 and needs_repair(bags[0]), "a killed writer leaves a bag without metadata.yaml"
    report = repair_bag(bags[0])
    assert report.damaged_copy.is_dir()
    secs = recorded_secs(read_bags(record_dir))
    older = sorted(sec for sec, at in arrived.items() if at < killed_at - 2.0)
    assert len(older) >= 5
    assert set(older) <= set(secs), f"lost frames older than 2 s: {sorted(set(older) - set(secs))}"
    assert set(secs) <= set(arrived), "the bag holds only frames the node segmented"
    assert secs == sorted(secs)


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (2_500_000, 2_500_000))  # Python ignores SIGXFSZ: writes fail EFBIG


def test_disk_failure_budget_and_bad_directory_stop_recording_not_segmentation(domain_id, tmp_path, ros) -> None:
    model = known_instances_model(tmp_path / "known.onnx")
    not_a_dir = tmp_path / "a_file"
    not_a_dir.write_text("x")
    node = start_node(domain_id, tmp_path, preexec_fn=_limit_file_size, model_path=model, record_mode="all",
                      record_dir=str(not_a_dir / "bags"), record_max_rate_hz=0.0)
    try:
        seen = ros.collect(InstanceArray, node.topic("instances"))
        diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
        wait_subscribed(ros, node)

        def recording_status():
            return latest_status(diagnostics, node.fqn, "recording")

        # 1. a recording directory that cannot be created
        phase(ros, domain_id, node, seen, "good:2", 100)
        assert wait_for(lambda: recording_status() is not None
                        and recording_status().level == DiagnosticStatus.ERROR, 10), node.log()
        status = recording_status()
        assert str(not_a_dir) in status.message and "segmentation continues" in status.message, status.message
        assert "Not a directory" in status.message

        # 2. the disk refuses writes (file size limit: EFBIG) in the middle of a bag
        broken = tmp_path / "efbig"
        assert set_parameters(ros, node, record_dir=str(broken)) == (True, "")
        phase(ros, domain_id, node, seen, "good:5", 200)
        assert wait_for(lambda: "File too large" in recording_status().message, 10), recording_status().message
        assert recording_status().level == DiagnosticStatus.ERROR
        bag_dir = next(broken.iterdir())
        repair_bag(bag_dir)
        secs = recorded_secs(read_bags(broken))
        assert 1 <= len(secs) <= 2 and secs == list(range(200, 200 + len(secs))), secs
        assert_frames_byte_equal(read_bags(broken), "good:5", 200)

        # 3. the budget: 1.5 MiB holds one 900 KB frame, then recording stops with a WARN
        budget_dir = tmp_path / "budget"
        assert set_parameters(ros, node, record_dir=str(budget_dir), record_budget_mb=1.5) == (True, "")
        phase(ros, domain_id, node, seen, "good:4", 300)
        assert wait_for(lambda: "budget" in recording_status().message, 10), recording_status().message
        assert recording_status().level == DiagnosticStatus.WARN
        bag = read_bags(budget_dir)  # closed cleanly: no repair needed
        assert recorded_secs(bag) == [300]
        assert_frames_byte_equal(bag, "good:4", 300)

        # segmentation never stopped: every frame of every phase was segmented and the node lives
        assert [m.header.stamp.sec for m in seen] == [100, 101, *range(200, 205), *range(300, 304)]
        seg = latest_status(diagnostics, node.fqn)
        assert seg.level == DiagnosticStatus.OK, seg.message
        assert node.alive()
    finally:
        node.stop()
