"""One seg_node, three cameras, one model, over real loopback DDS: a 640x480 RGB-D head camera, a 320x240
compressed wrist camera that also sends a corrupt JPEG and two decompression bombs, and an 800x600 bgr8 base
camera, all from another process. Each camera's outputs carry its own stamps, frame_id and size, hold the
instances the bundled model finds in that camera's own frame, and nothing crosses over; the bad frames
are counted on the wrist camera alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from ros_env import REPO, ros_env
from ros_harness import PARAMS_FILE, SegNodeProcess, latest_status, set_parameter, values, wait_for
from sensor_msgs.msg import Image

from robot_instseg_msgs.msg import InstanceArray

PUBLISHER = REPO / "test" / "procs" / "publish_cameras.py"
CAMERAS = ("head", "wrist", "base")


def cameras_params_file(tmp_path: Path, **extra) -> Path:
    """The default params file with three cameras, each configured as config/cameras.yaml shows."""
    doc = yaml.safe_load(PARAMS_FILE.read_text())
    params = doc["/**"]["ros__parameters"]
    params.update(cameras=list(CAMERAS), input_reliability="reliable", max_batch=3, **extra)
    params["wrist"] = {"image_transport": "compressed"}
    params["base"] = {"depth_mode": "off"}
    path = tmp_path / "cameras.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _expected_counts() -> dict[tuple[str, int], int]:
    """Instances the bundled model finds in each good frame, segmented here one frame at a time."""
    sys.path.insert(0, str(PUBLISHER.parent))
    from publish_cameras import FRAMES, colour_message, label

    from robot_instseg.engine.frame_pipeline import segment_frame
    from robot_instseg.engine.segmenter import load_segmenter
    from robot_instseg.ros.convert import image_from_msg

    segmenter = load_segmenter()
    counts = {}
    for camera in CAMERAS:
        for index in range(FRAMES):
            if label(camera, index) == "good":
                image, order = image_from_msg(colour_message(camera, index)[0])
                counts[(camera, index)] = len(segment_frame(segmenter, image, order).visible)
    return counts


def test_three_cameras_one_model_nothing_crosses_over(domain_id: int, ros, tmp_path: Path) -> None:
    node = SegNodeProcess(domain_id, {}, params_file=cameras_params_file(tmp_path), log_dir=tmp_path)
    try:
        outputs = {c: ros.collect(InstanceArray, node.topic(f"{c}/instances")) for c in CAMERAS}
        labels = {c: ros.collect(Image, node.topic(f"{c}/labels")) for c in CAMERAS}
        diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
        subscribed = wait_for(lambda: all(ros.node.count_subscribers(node.topic(t)) > 0 for t in
                                          ("head/image", "wrist/image/compressed", "base/image", "head/depth")), 60)
        assert subscribed, node.log()
        assert ros.node.count_subscribers(node.topic("base/depth")) == 0  # base: depth_mode off for it alone
        done = subprocess.run([sys.executable, str(PUBLISHER), node.fqn, "1"], env=ros_env(domain_id),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        sent = json.loads(done.stdout.strip().splitlines()[-1])
        good = {c: {(f["sec"], f["nanosec"]) for f in sent if f["camera"] == c and f["label"] == "good"}
                for c in CAMERAS}
        sent_to = {c: sum(f["camera"] == c for f in sent) for c in CAMERAS}

        def statuses():
            return {c: latest_status(diagnostics, node.fqn, c) for c in (*CAMERAS, "segmentation")}

        def judged_every_frame() -> bool:
            """Each camera's every frame arrived and was published, dropped for a newer one, or rejected."""
            got = {c: values(s) for c, s in statuses().items()}
            return all(got[c] and int(got[c]["frames_received"]) == sent_to[c] and
                       int(got[c]["frames_processed"]) + int(got[c]["frames_dropped"]) +
                       int(got[c]["inputs_rejected"]) == sent_to[c] for c in CAMERAS)

        assert wait_for(judged_every_frame, 60), ({c: values(s) for c, s in statuses().items()}, node.log())
        got = {c: values(s) for c, s in statuses().items()}
        for camera in CAMERAS:  # every published frame arrived here, less what the middleware says it lost
            lost = ros.lost.get(node.topic(f"{camera}/instances"), 0)
            assert wait_for(lambda: len(outputs[camera]) + lost >= int(got[camera]["frames_processed"]), 10)
            assert int(got[camera]["frames_processed"]) >= 1, got[camera]  # served, not starved
        expected = _expected_counts()
        for camera in CAMERAS:
            stamps = [(m.header.stamp.sec, m.header.stamp.nanosec) for m in outputs[camera]]
            assert {nanosec for _, nanosec in stamps} <= {CAMERAS.index(camera)}  # the stamp names the camera
            assert set(stamps) <= good[camera], (camera, stamps)  # its own frames only, never a bad one
            assert all(m.header.frame_id == f"{camera}_optical" for m in outputs[camera])
            for msg in outputs[camera]:
                assert len(msg.instances) == expected[(camera, msg.header.stamp.sec - 300)], (camera, msg.header)
            h, w = {"head": (480, 640), "wrist": (240, 320), "base": (600, 800)}[camera]
            assert labels[camera] and all((m.height, m.width) == (h, w) for m in labels[camera])
            assert all(m.header.frame_id == f"{camera}_optical" for m in labels[camera])
        with_3d = [i.has_3d for m in outputs["head"] for i in m.instances]
        assert sum(with_3d) >= 0.8 * len(with_3d)  # the RGB-D camera gets 3D
        assert not any(i.has_3d for c in ("wrist", "base") for m in outputs[c] for i in m.instances)

        # The wrist's three bad frames are rejected there, unless a newer frame replaced one before it was judged.
        assert got["head"]["inputs_rejected"] == "0" and got["base"]["inputs_rejected"] == "0"
        rejected, dropped = int(got["wrist"]["inputs_rejected"]), int(got["wrist"]["frames_dropped"])
        assert 3 - dropped <= rejected <= 3, got["wrist"]
        by_reason = {k: int(v) for k, v in got["wrist"].items() if k.startswith("rejected_")}
        assert sum(by_reason.values()) == rejected and set(by_reason) <= {"rejected_too_large",
                                                                          "rejected_compressed"}, by_reason
        assert got["wrist"]["image_transport"] == "compressed"
        assert got["head"]["input_reliability_chosen"] == "reliable" and "frames_with_3d" in got["head"]
        assert got["segmentation"]["cameras"] == "3" and got["segmentation"]["batch_capacity"] == "dynamic"
        sizes = dict(pair.split(":") for pair in got["segmentation"]["batch_sizes_seen"].split())
        assert sum(int(v) for v in sizes.values()) == sum(int(got[c]["frames_processed"]) for c in CAMERAS)
        for camera in ("head", "base"):  # OK while frames come; WARN "no images received" 5 s after the last one
            status = statuses()[camera]
            assert status.level != DiagnosticStatus.ERROR and "rejected" not in status.message, status.message
        wrist = statuses()["wrist"]  # WARN while its rejections are recent (10 s), or 5 s after its last frame
        assert wrist.level != DiagnosticStatus.ERROR, wrist.message

        # A run-time change for one camera: base may only be served once a minute from now on.
        assert set_parameter(ros, node, "base.max_rate_hz", 0.0167) == (True, "")
        assert set_parameter(ros, node, "wrist.max_rate_hz", -3.0)[0] is False
        assert node.alive()
    finally:
        assert node.stop() == 0, node.log()


def test_auto_reliability_follows_each_camera_and_lifecycle_serves_all(domain_id: int, ros, tmp_path: Path) -> None:
    """Two cameras, input_reliability auto (the default): a best_effort camera and a reliable one are both
    served, each subscription says what it chose; deactivate unsubscribes both, activate brings both back."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    from ros_harness import publish

    node = SegNodeProcess(domain_id, {"cameras": "[left, right]", "depth_mode": "'off'"}, log_dir=tmp_path)
    try:
        outputs = {c: ros.collect(InstanceArray, node.topic(f"{c}/instances")) for c in ("left", "right")}
        diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
        assert wait_for(lambda: all(ros.node.count_subscribers(node.topic(f"{c}/image")) for c in ("left", "right")),
                        60), node.log()
        # A best_effort camera: the subscription starts reliable (no publisher yet), then follows the offer.
        publish(domain_id, node.topic("left/image"), "small:15", rate=3, reliability="best_effort")
        publish(domain_id, node.topic("right/image"), "good:2", rate=3)
        assert wait_for(lambda: outputs["right"], 20), node.log()
        assert outputs["left"], node.log()  # small frames: best_effort delivers most even on a loaded machine
        def chosen() -> dict:
            return {c: values(latest_status(diagnostics, node.fqn, c)).get("input_reliability_chosen")
                    for c in ("left", "right")}

        assert wait_for(lambda: chosen() == {"left": "best_effort", "right": "reliable"}, 5), (chosen(), node.log())
        assert {m.header.frame_id for m in outputs["left"]} <= {f"cam_{i}" for i in range(15)}

        def transition(transition_id: int) -> bool:
            request = ChangeState.Request()
            request.transition.id = transition_id
            return ros.call(ChangeState, f"{node.fqn}/change_state", request).success

        assert transition(Transition.TRANSITION_DEACTIVATE)
        assert wait_for(lambda: not any(ros.node.count_subscribers(node.topic(f"{c}/image"))
                                        for c in ("left", "right")), 10)
        assert transition(Transition.TRANSITION_ACTIVATE)
        before = {c: len(outputs[c]) for c in outputs}
        assert wait_for(lambda: all(ros.node.count_subscribers(node.topic(f"{c}/image")) for c in ("left", "right")),
                        10)
        publish(domain_id, node.topic("right/image"), "good:2", rate=3, first_sec=500)
        assert wait_for(lambda: len(outputs["right"]) > before["right"], 20), node.log()
        assert outputs["right"][-1].header.stamp.sec >= 500 and len(outputs["left"]) == before["left"]
    finally:
        assert node.stop() == 0, node.log()


def test_the_example_cameras_file_configures_both_cameras(domain_id: int, ros, tmp_path: Path) -> None:
    """config/cameras.yaml, loaded over the defaults as its comment says, gives the topics it promises."""
    node = SegNodeProcess(domain_id, {}, log_dir=tmp_path, extra_args=["--params-file", str(REPO / "config" /
                                                                                            "cameras.yaml")])
    try:
        wanted = ("head/image", "head/depth", "head/camera_info", "wrist/image/compressed")
        assert wait_for(lambda: all(ros.node.count_subscribers(node.topic(t)) for t in wanted), 60), node.log()
        assert ros.node.count_subscribers(node.topic("wrist/depth")) == 0
        assert all(ros.node.count_publishers(node.topic(f"{c}/instances")) for c in ("head", "wrist"))
        assert "parameter refused" not in node.log()
    finally:
        assert node.stop() == 0, node.log()


def test_recording_two_cameras_and_running_the_bag_offline_per_camera(domain_id: int, ros, tmp_path: Path) -> None:
    """The node records each camera's frames and instances under that camera's topics in one bag; `run BAG
    --topic left=... --topic right=...` gives, per camera, the instances the live node published."""
    import signal

    from ros_harness import publish
    from test_run_offline import assert_same_instances, bag_messages, run_cli

    record_dir = tmp_path / "bags"
    node = SegNodeProcess(domain_id, {"cameras": "[left, right]", "depth_mode": "'off'", "record_mode": "all",
                                      "record_dir": str(record_dir), "record_max_rate_hz": 0.0,
                                      "input_reliability": "reliable"}, log_dir=tmp_path)
    try:
        live = {c: ros.collect(InstanceArray, node.topic(f"{c}/instances")) for c in ("left", "right")}
        assert wait_for(lambda: all(ros.node.count_subscribers(node.topic(f"{c}/image")) for c in ("left", "right")),
                        60), node.log()
        publish(domain_id, node.topic("left/image"), "good:3", rate=3, first_sec=100)
        publish(domain_id, node.topic("right/image"), "good:3", rate=3, first_sec=200)
        assert wait_for(lambda: len(live["left"]) >= 3 and len(live["right"]) >= 3, 30), node.log()
        node.proc.send_signal(signal.SIGTERM)
        assert node.proc.wait(30) == 0, node.log()
    finally:
        node.stop()
    bags = sorted(record_dir.glob("*/*.mcap"))
    assert len(bags) == 1, list(record_dir.rglob("*"))
    for camera, first in (("left", 100), ("right", 200)):
        recorded = bag_messages(bags[0], f"/seg/{camera}/instances")
        assert sorted(recorded) == [(first + i, 0) for i in range(3)]  # each camera under its own topics
        assert sorted(bag_messages(bags[0], f"/seg/{camera}/image")) == sorted(recorded)
    out = tmp_path / "offline.mcap"
    run_cli("run", str(bags[0]), "--topic", "left=/seg/left/image", "--topic", "right=/seg/right/image",
            "--out", str(out), "--node-name", "seg", "--providers", "cpu", "--quiet")
    for camera in ("left", "right"):
        offline = bag_messages(out, f"/seg/{camera}/instances")
        received = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in live[camera]}
        assert sorted(offline) == sorted(received)
        for stamp, msg in offline.items():
            assert_same_instances(received[stamp], msg)


def test_record_all_cameras_stores_every_cameras_newest_frame_with_a_capture(domain_id: int, ros,
                                                                             tmp_path: Path) -> None:
    """record_all_cameras: right's frame is captured alone (left has none yet); left's capture also holds right's
    newest frame, its InstanceArray beside it, each under its own camera's topics."""
    import signal

    from ros_harness import publish
    from rosbags.highlevel import AnyReader

    record_dir = tmp_path / "bags"
    node = SegNodeProcess(domain_id, {"cameras": "[left, right]", "depth_mode": "'off'", "record_mode": "all",
                                      "record_all_cameras": True, "record_dir": str(record_dir),
                                      "record_max_rate_hz": 0.0, "input_reliability": "reliable"}, log_dir=tmp_path)
    try:
        live = {c: ros.collect(InstanceArray, node.topic(f"{c}/instances")) for c in ("left", "right")}
        assert wait_for(lambda: all(ros.node.count_subscribers(node.topic(f"{c}/image")) for c in ("left", "right")),
                        60), node.log()
        publish(domain_id, node.topic("right/image"), "good:1", rate=3, first_sec=200)
        assert wait_for(lambda: len(live["right"]) == 1, 20), node.log()
        publish(domain_id, node.topic("left/image"), "good:1", rate=3, first_sec=100)
        assert wait_for(lambda: len(live["left"]) == 1, 20), node.log()
        node.proc.send_signal(signal.SIGTERM)
        assert node.proc.wait(30) == 0, node.log()
    finally:
        node.stop()
    bags = sorted(record_dir.glob("*/*.mcap"))
    assert len(bags) == 1
    with AnyReader([bags[0]]) as reader:
        stamps: dict[str, list] = {}
        for connection, _, data in reader.messages():
            if connection.msgtype.startswith("sensor_msgs") or connection.msgtype.endswith("InstanceArray"):
                header = reader.deserialize(data, connection.msgtype).header
                stamps.setdefault(connection.topic, []).append(header.stamp.sec)
    assert stamps == {"/seg/right/image": [200, 200], "/seg/right/instances": [200, 200],
                      "/seg/left/image": [100], "/seg/left/instances": [100]}


def test_fair_shares_under_overload(domain_id: int, ros, tmp_path: Path) -> None:
    """Two cameras publishing small frames at 100 Hz each (cheap to publish, so both arrive evenly), together far
    more than this machine segments: the node drops stale frames on both and serves each camera about equally
    often (round-robin turns)."""
    node = SegNodeProcess(domain_id, {"cameras": "[a, b]", "depth_mode": "'off'", "input_reliability": "reliable",
                                      "tracking": False}, log_dir=tmp_path)
    try:
        diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
        assert wait_for(lambda: all(ros.node.count_subscribers(node.topic(f"{c}/image")) for c in "ab"), 60), \
            node.log()
        import time

        together = {**ros_env(domain_id), "PUBLISH_START_AT": str(time.time() + 8.0)}  # both cameras at once
        publishers = [subprocess.Popen([sys.executable, str(REPO / "test" / "procs" / "publish_frames.py"),
                                        node.topic(f"{c}/image"), "small:300", "100"], env=together,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in "ab"]
        for proc in publishers:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, out + err

        def counts() -> dict:
            return {c: values(latest_status(diagnostics, node.fqn, c)) for c in "ab"}

        def settled() -> bool:  # every frame received was served or dropped; a reliable writer into a KEEP_LAST
            got = counts()  # reader history can still lose a few when the node's executor falls behind (seen: 296)
            return all(got[c] and int(got[c]["frames_received"]) >= 285 and int(got[c]["frames_processed"]) +
                       int(got[c]["frames_dropped"]) == int(got[c]["frames_received"]) for c in "ab")

        keys = ("frames_received", "frames_processed", "frames_dropped")
        assert wait_for(settled, 30), ({c: {k: (counts()[c] or {}).get(k) for k in keys} for c in "ab"}, node.log())
        got = counts()
        served = {c: int(got[c]["frames_processed"]) for c in "ab"}
        dropped = {c: int(got[c]["frames_dropped"]) for c in "ab"}
        assert sum(dropped.values()) > 0, (served, dropped)  # it was overloaded: stale frames were dropped
        # Round robin alternates whenever both have a frame waiting; uneven arrivals make up the rest (a publisher
        # starved of CPU for a moment leaves the other camera alone in the queue: seen 29 vs 35 under load). A
        # scheduler that favoured one camera would serve it several times as often.
        assert abs(served["a"] - served["b"]) <= max(8, 0.25 * max(served.values())), (served, dropped)
    finally:
        assert node.stop() == 0, node.log()
