"""InstanceArray's whole-object fields, filled from a frame's amodal masks (and left empty without them)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from std_msgs.msg import Header

from robot_instseg.ros.convert import instances_msg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from amodal_fixtures import scene_with_whole_masks  # noqa: E402


def test_whole_masks_boxes_fractions_and_occluders_reach_the_message() -> None:
    detections, annotations = scene_with_whole_masks(5)
    msg = instances_msg(detections, Header(frame_id="camera"))
    occluded = 0
    for inst, ann in zip(msg.instances, annotations):
        assert inst.has_amodal
        box = inst.amodal_bbox
        assert [box.x_offset, box.y_offset, box.width, box.height] == ann["amodal_bbox"]
        whole = np.frombuffer(bytes(inst.amodal_mask.data), np.uint8).reshape(box.height, box.width)
        assert int((whole == 255).sum()) == ann["amodal_area"] and inst.amodal_mask.encoding == "mono8"
        assert abs(inst.occluded_fraction - ann["occlusion_rate"]) < 1e-6
        assert set(inst.occluded_by) <= {o["id"] for o in ann["occluded_by"]}  # ids are Instance.id
        occluded += bool(len(inst.occluded_by))
    assert occluded >= 3


def test_without_an_amodal_head_the_fields_stay_empty() -> None:
    detections, _ = scene_with_whole_masks(5)
    detections.amodal_boxes, detections.amodal_masks = np.zeros((0, 4), np.int32), []
    inst = instances_msg(detections, Header(frame_id="camera")).instances[0]
    assert not inst.has_amodal and len(inst.occluded_by) == 0 and inst.amodal_mask.width == 0
