"""3D per instance over real DDS: colour, registered depth and CameraInfo from another process,
the bundled model in seg_node, and this process checking InstanceArray, ~/labels and ~/points
against the scenes' ground truth; broken depth gives has_3d false with a counted reason and
leaves 2D output alone."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from ros_env import REPO, ros_env
from ros_harness import RGBD_PUBLISHER, latest_status, publish_rgbd, start_node, values, wait_for, wait_subscribed
from sensor_msgs.msg import Image, PointCloud2

from robot_instseg.synthetic.depth import render_depth, visible_surface_points
from robot_instseg.synthetic.scenes import generate_scene, scene_seed
from robot_instseg_msgs.msg import InstanceArray

BROKEN = {"wrong_encoding": "bad_encoding", "all_zero": "empty_depth", "all_nan": "empty_depth",
          "fx_zero": "bad_camera_info", "size_mismatch": "size_mismatch", "late": "late_depth",
          "colour_only": "no_depth"}


def _full_mask(inst) -> np.ndarray:
    m = inst.mask
    crop = np.frombuffer(bytes(m.data), np.uint8).reshape(m.height, m.step)[:, :m.width] > 0
    return crop


def _labels(msg: Image) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), np.uint16).reshape(msg.height, msg.step // 2)[:, :msg.width]


def _cloud(msg: PointCloud2) -> np.ndarray:
    names = [f.name for f in msg.fields]
    assert names == ["x", "y", "z", "instance_id"] and msg.point_step == 16 and msg.height == 1
    dtype = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("instance_id", "<u4")])
    return np.frombuffer(bytes(msg.data), dtype)


def _centroid_errors_mm(msg: InstanceArray, index: int) -> list[float]:
    """Centroid error of each output instance matched (mask IoU >= 0.5) to a true object of the scene."""
    from publish_rgbd import SCENES, SEED  # the publisher's scene plan (same folder)

    scene = generate_scene(scene_seed(SEED, index % SCENES))
    truth = render_depth(scene)
    gt_masks, gt_points = scene.visible_masks(), visible_surface_points(scene, truth)
    errors = []
    for inst in msg.instances:
        if not inst.has_3d:
            continue
        full = np.zeros(gt_masks[0].shape, bool)
        b = inst.bbox
        full[b.y_offset:b.y_offset + b.height, b.x_offset:b.x_offset + b.width] = _full_mask(inst)
        ious = [(full & g).sum() / max((full | g).sum(), 1) for g in gt_masks]
        j = int(np.argmax(ious))
        if ious[j] >= 0.5:
            c = np.array([inst.centroid.x, inst.centroid.y, inst.centroid.z])
            errors.append(float(np.linalg.norm(c - gt_points[j].mean(axis=0))) * 1e3)
    return errors


def _depth_tally(frames: list[dict]) -> dict[str, int]:
    """What the node's diagnostics count for these frames: depth_<reason> per broken one, frames_with_3d."""
    tally: dict[str, int] = {}
    for frame in frames:
        key = f"depth_{BROKEN[frame['label']]}" if frame["label"] in BROKEN else "frames_with_3d"
        tally[key] = tally.get(key, 0) + 1
    return tally


def test_rgbd_in_3d_out_and_broken_depth_never_stops_2d(domain_id, tmp_path, ros) -> None:
    sys.path.insert(0, str(RGBD_PUBLISHER.parent))
    record_dir = tmp_path / "bags"
    node = start_node(domain_id, tmp_path, depth_wait_ms=60.0, record_mode="all", record_dir=str(record_dir),
                      record_max_rate_hz=0.0)
    try:
        instances = ros.collect(InstanceArray, node.topic("instances"))
        labels = ros.collect(Image, node.topic("labels"))
        clouds = ros.collect(PointCloud2, node.topic("points"))
        diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
        wait_subscribed(ros, node)
        wait_subscribed(ros, node, "depth")
        assert wait_for(lambda: node.alive() and ros.node.count_publishers(node.topic("points")) > 0, 30)
        sent = publish_rgbd(domain_id, node.fqn, 2.0)
        topic = node.topic("instances")

        def accounted() -> bool:  # every frame sent reached the node, and every one it processed reached us
            v = values(latest_status(diagnostics, node.fqn))
            return bool(v) and int(v["frames_received"]) + int(v["frames_lost_in_transport"]) == len(sent) and \
                int(v["frames_processed"]) + int(v["frames_dropped"]) == int(v["frames_received"]) and \
                len(instances) + ros.lost[topic] >= int(v["frames_processed"])

        assert wait_for(accounted, 30), (len(instances), ros.lost, values(latest_status(diagnostics, node.fqn)),
                                         node.log()[-3000:])
        diag = values(latest_status(diagnostics, node.fqn))
        by_sec = {m.header.stamp.sec: m for m in instances}
        assert len(by_sec) == len(instances) and set(by_sec) <= {f["sec"] for f in sent}, sorted(by_sec)
        assert len(instances) + ros.lost[topic] == int(diag["frames_processed"]), "every processed frame is published"
        # A loaded machine may lose a frame on loopback UDP (a 900 KB frame overflows the socket buffer and
        # a keep-last writer overwrites it before its repair) or drop one in the one-slot mailbox (a repaired
        # gap delivers a burst): each is counted by the node or the middleware, never silent, and rare.
        imperfect = {"lost_to_node": int(diag["frames_lost_in_transport"]),
                     "dropped_by_node": int(diag["frames_dropped"]), "lost_to_us": ros.lost[topic]}
        assert sum(imperfect.values()) <= 3, (imperfect, diag)
        judged_every_frame = not imperfect["dropped_by_node"] and not imperfect["lost_to_node"]
        labels_by_sec = {m.header.stamp.sec: m for m in labels}
        clouds_by_sec = {m.header.stamp.sec: m for m in clouds}

        errors: list[float] = []
        arrived = [frame for frame in sent if frame["sec"] in by_sec]
        for frame in arrived:
            msg = by_sec[frame["sec"]]
            assert msg.header.frame_id == "camera_optical" and len(msg.instances) >= 2  # 2D unaffected
            if frame["label"] in ("good", "half_res"):
                assert msg.depth_status == "", (frame, msg.depth_status)
                with_3d = [i for i in msg.instances if i.has_3d]
                assert len(with_3d) >= 0.8 * len(msg.instances), frame
                for inst in with_3d:
                    assert 0.4 < inst.centroid.z < 1.6 and inst.valid_points >= 20 and 0 < inst.depth_coverage <= 1
                    q = inst.box_center.orientation
                    assert abs(q.x ** 2 + q.y ** 2 + q.z ** 2 + q.w ** 2 - 1) < 1e-6
                    assert inst.box_size.x >= inst.box_size.y > 0
                errors += _centroid_errors_mm(msg, frame["index"])
            else:
                assert msg.depth_status == BROKEN[frame["label"]], (frame, msg.depth_status)
                assert not any(i.has_3d for i in msg.instances)
                assert all(np.isnan(i.centroid.z) and i.valid_points == 0 for i in msg.instances)
        assert len(errors) >= 40, len(errors)
        assert np.median(errors) <= 10.0 and np.percentile(errors, 95) <= 30.0, sorted(errors)

        # ~/points: every point projects onto a pixel ~/labels gives to its instance_id, or onto one no
        # instance owns that depth completion added to the instance's surface
        checked = 0
        k = render_depth(generate_scene(scene_seed(77, 0))).intrinsics
        for sec, cloud_msg in clouds_by_sec.items():
            cloud = _cloud(cloud_msg)
            if not len(cloud) or sec not in labels_by_sec:
                continue
            lab = _labels(labels_by_sec[sec])
            u = np.rint(cloud["x"] * k.fx / cloud["z"] + k.cx).astype(int)
            v = np.rint(cloud["y"] * k.fy / cloud["z"] + k.cy).astype(int)
            own = lab[v, u] == cloud["instance_id"]
            assert (own | (lab[v, u] == 0)).all() and own.mean() > 0.8, own.mean()
            assert set(np.unique(cloud["instance_id"])) <= {i.id for i in by_sec[sec].instances
                                                             if i.has_3d and i.same_object_as == 0}
            checked += 1
        assert checked >= 5, checked

        def judged() -> dict[str, int]:  # the node's own count of each frame's depth outcome
            status = values(latest_status(diagnostics, node.fqn))
            tally = {k: int(n) for k, n in status.items() if k.startswith("depth_")}
            return {**tally, "frames_with_3d": int(status["frames_with_3d"])}

        assert wait_for(lambda: sum(judged().values()) == int(diag["frames_processed"]), 5), (judged(), diag)
        got, counts = judged(), values(latest_status(diagnostics, node.fqn))
        every, seen = _depth_tally(sent), _depth_tally(arrived)
        if judged_every_frame:
            assert got == every, counts
        else:  # between what we saw judged and everything sent
            assert all(seen.get(k, 0) <= got.get(k, 0) <= every.get(k, 0) for k in every.keys() | got.keys()), counts
        assert node.alive()
    finally:
        node.stop()
    # the recording holds each frame with the depth frame that gave it its 3D (read by rosbags, not by ROS)
    from rosbags.highlevel import AnyReader

    bags = sorted(p for p in record_dir.iterdir() if p.is_dir())
    with AnyReader(bags) as reader:
        stamps: dict[str, set] = {}
        for connection, _, data in reader.messages():
            if connection.msgtype == "sensor_msgs/msg/Image":
                msg = reader.deserialize(data, connection.msgtype)
                stamps.setdefault(connection.topic, set()).add(msg.header.stamp.sec)
    with_3d = {f["sec"] for f in sent if f["label"] in ("good", "half_res")}
    if judged_every_frame:
        assert stamps[node.topic("depth")] == with_3d and stamps[node.topic("image")] == {f["sec"] for f in sent}
    else:  # every frame it processed, whether or not its output reached us
        assert {f["sec"] for f in arrived} <= stamps[node.topic("image")] <= {f["sec"] for f in sent}
        assert stamps[node.topic("depth")] <= with_3d


LAGGED_PUBLISHER = REPO / "test" / "procs" / "publish_rgbd_lagged.py"
# Depth trails colour by this much: 50 ms past the fixed 30 ms wait. At 40 ms, on a slow day of this VM
# (2026-12-07, the code of the day before too), 19 of 20 frames of the fixed run still found their depth:
# the node had their colour, or took them up, 10 ms or more after it was sent.
LAG_MS = 80


def _lagged_run(domain_id: int, tmp_path, ros, cap_ms: float) -> tuple[list, dict]:
    """20 frames at 4 Hz whose depth comes 80 ms after colour, to a node that waits at least 30 ms and at most
    ``cap_ms``: (InstanceArrays by stamp order, the node's last diagnostics)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    node = start_node(domain_id, tmp_path, depth_wait_ms=30.0, depth_wait_max_ms=cap_ms)
    try:
        instances = ros.collect(InstanceArray, node.topic("instances"))
        diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
        wait_subscribed(ros, node)
        wait_subscribed(ros, node, "depth")
        done = subprocess.run([sys.executable, str(LAGGED_PUBLISHER), node.fqn, "4", str(LAG_MS), "20"],
                              env=ros_env(domain_id), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        sent = json.loads(done.stdout.strip().splitlines()[-1])
        assert wait_for(lambda: len(instances) >= len(sent) - 1, 20), (len(instances), node.log()[-2000:])
        assert wait_for(lambda: "wait_for_depth_ms" in values(latest_status(diagnostics, node.fqn)), 5)
        time.sleep(1.2)  # the next diagnostics tick counts the last frame
        return sorted(instances, key=lambda m: m.header.stamp.sec), values(latest_status(diagnostics, node.fqn))
    finally:
        node.stop()


def test_depth_that_trails_colour_by_80_ms_is_still_fused(domain_id, tmp_path, ros) -> None:
    """The wait learns the lag: after the first few frames every frame has its 3D. With the wait fixed at
    30 ms (cap = floor) the same stream loses a third to most of them, late (fewer when the machine is so
    loaded that the node picks frames up after their depth has come anyway)."""
    adaptive, diag = _lagged_run(domain_id, tmp_path / "adaptive", ros, cap_ms=150.0)
    learned = [m for m in adaptive if m.header.stamp.sec >= 306]  # from the 7th frame on
    fused = [m for m in learned if m.depth_status == "" and any(i.has_3d for i in m.instances)]
    assert len(fused) >= len(learned) - 1 and len(learned) >= 12, [(m.header.stamp.sec, m.depth_status)
                                                                      for m in adaptive]
    assert LAG_MS <= float(diag["wait_for_depth_ms"].split()[0]) <= 150.0, diag
    assert float(diag["lag_of_depth_p90_ms"]) >= LAG_MS - 5 and float(diag["share_with_3d_last_min"].split()[0]) >= 0.6, diag
    fixed, diag = _lagged_run(domain_id, tmp_path / "fixed", ros, cap_ms=30.0)
    late = [m for m in fixed if m.depth_status == "late_depth"]  # a loaded machine picks some frames up late
    assert len(late) >= len(fixed) // 3, [(m.header.stamp.sec, m.depth_status) for m in fixed]  # (seen: 9 of 20)
    assert diag["wait_for_depth_ms"].startswith("30.0"), diag
