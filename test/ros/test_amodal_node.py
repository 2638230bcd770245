"""A model with the amodal head in seg_node over real DDS: every instance carries its whole mask, and with
depth_amodal_extent turned on at run time the same RGB-D frames give boxes over the whole extent while the
centroids stay the measured surface's."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from amodal_fixtures import grown_bundled_model
from ros_env import REPO, ros_env
from ros_harness import set_parameter, start_node, wait_for, wait_subscribed

from robot_instseg_msgs.msg import InstanceArray

RGBD_PUBLISHER = REPO / "test" / "procs" / "publish_rgbd.py"


def _send(domain_id: int, node_fqn: str) -> list[dict]:
    done = subprocess.run([sys.executable, str(RGBD_PUBLISHER), node_fqn, "3"], env=ros_env(domain_id),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _good_frames(messages: list, sent: list[dict]) -> dict[int, InstanceArray]:
    """The arrays of the frames sent with good depth, by stamp."""
    good = {f["sec"] for f in sent if f["label"] == "good"}
    return {m.header.stamp.sec: m for m in messages if m.header.stamp.sec in good}


def test_whole_masks_and_whole_extent_boxes_over_dds(domain_id, tmp_path, ros) -> None:
    model = grown_bundled_model(tmp_path / "amodal.onnx")
    node = start_node(domain_id, tmp_path, model_path=str(model), depth_wait_ms=60.0, tracking=False)
    try:
        instances = ros.collect(InstanceArray, node.topic("instances"))
        wait_subscribed(ros, node)
        wait_subscribed(ros, node, "depth")
        sent = _send(domain_id, node.fqn)
        assert wait_for(lambda: len(instances) >= len(sent) - 2, 30), (len(instances), node.log()[-2000:])
        plain = _good_frames(list(instances), sent)
        assert set_parameter(ros, node, "depth_amodal_extent", True) == (True, "")
        before = len(instances)
        _send(domain_id, node.fqn)  # the same frames again, whole extent on
        assert wait_for(lambda: len(instances) >= before + len(sent) - 2, 30), node.log()[-2000:]
        whole = _good_frames(list(instances)[before:], sent)
        assert node.alive()
    finally:
        node.stop()
    common = sorted(set(plain) & set(whole))
    assert len(common) >= 6, (sorted(plain), sorted(whole))
    grown = compared = 0
    for sec in common:
        a, b = plain[sec].instances, whole[sec].instances
        assert len(a) == len(b) >= 2
        for i, j in zip(a, b):
            assert i.has_amodal and j.has_amodal and i.amodal_mask.height > 0 and i.occluded_fraction >= 0.0
            assert (i.amodal_bbox.width, i.amodal_bbox.height) == (j.amodal_bbox.width, j.amodal_bbox.height)
            if not (i.has_3d and j.has_3d):
                continue
            compared += 1
            np.testing.assert_array_equal([i.centroid.x, i.centroid.y, i.centroid.z],
                                          [j.centroid.x, j.centroid.y, j.centroid.z])  # the measured surface
            assert i.valid_points == j.valid_points
            grown += abs(j.box_size.x - i.box_size.x) > 0.002 or abs(j.box_size.y - i.box_size.y) > 0.002
    assert compared >= 30, compared
    assert grown >= 3, grown  # parts behind occluders now in some boxes
