"""Occlusion order from depth in seg_node over real DDS: the bundled model has no amodal head, yet on
RGB-D frames each instance's occluded_by names what lies on it, exactly as geometry.depth_order reads
the published visible masks against the frame's depth; turned off at run time, it is empty again."""

from __future__ import annotations

import sys

import numpy as np
from ros_harness import RGBD_PUBLISHER, rgbd_around_parameter, start_node

from robot_instseg.engine.types import Detections
from robot_instseg.geometry.depth_order import depth_occlusion
from robot_instseg_msgs.msg import InstanceArray


def _published(array: InstanceArray) -> Detections:
    """The array's instances as Detections: boxes, visible masks and alternative readings, as published."""
    shape = (array.image_height, array.image_width)
    boxes, masks = [], []
    for inst in array.instances:
        b, m = inst.bbox, inst.mask
        boxes.append((b.x_offset, b.y_offset, b.x_offset + b.width, b.y_offset + b.height))
        rows = np.frombuffer(bytes(m.data), np.uint8).reshape(m.height, m.step)[:, :m.width]
        masks.append(rows > 0)
    n = len(boxes)
    found = Detections(image_shape=shape, boxes=np.asarray(boxes, np.float32).reshape(n, 4),
                       scores=np.ones(n, np.float32), class_ids=np.zeros(n, np.int64),
                       mask_boxes=np.asarray(boxes, np.int32).reshape(n, 4), masks=masks)
    found.alternative_of = np.asarray([inst.same_object_as - 1 for inst in array.instances], np.int64)
    return found


def test_occluded_by_from_depth_over_dds(domain_id, tmp_path, ros) -> None:
    if str(RGBD_PUBLISHER.parent) not in sys.path:  # the publisher's frames, and the modules it imports
        sys.path.insert(0, str(RGBD_PUBLISHER.parent))
    from publish_rgbd import scene_inputs

    node = start_node(domain_id, tmp_path, depth_wait_ms=60.0, tracking=False)
    try:
        sent, on, off = rgbd_around_parameter(ros, node, domain_id, "occlusion_from_depth", False)
        assert node.alive()
    finally:
        node.stop()
    good = {f["sec"]: f["index"] for f in sent if f["label"] == "good"}
    checked = ordered = 0
    for array in on:
        if array.header.stamp.sec not in good or not all(inst.has_3d for inst in array.instances[:1]):
            continue
        _, depth, _ = scene_inputs(good[array.header.stamp.sec])
        expected = depth_occlusion(_published(array), depth)
        assert [list(inst.occluded_by) for inst in array.instances] == [[k + 1 for k in e] for e in expected]
        assert not any(inst.has_amodal for inst in array.instances)  # no head: only the order is filled
        checked += 1
        ordered += sum(len(e) for e in expected)
    assert checked >= 6, (checked, sorted(good))
    assert ordered >= 3, ordered  # the scenes have objects on objects
    assert sum(len(inst.occluded_by) for array in off for inst in array.instances) == 0
