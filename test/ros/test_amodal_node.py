"""A model with the amodal head in seg_node over real DDS: every instance carries its whole mask, and with
depth_amodal_extent turned on at run time the same RGB-D frames give boxes over the whole extent while the
centroids stay the measured surface's."""

from __future__ import annotations

import numpy as np
from amodal_fixtures import grown_bundled_model
from ros_harness import rgbd_around_parameter, start_node

from robot_instseg_msgs.msg import InstanceArray


def _good_frames(messages: list, sent: list[dict]) -> dict[int, InstanceArray]:
    """The arrays of the frames sent with good depth, by stamp."""
    good = {f["sec"] for f in sent if f["label"] == "good"}
    return {m.header.stamp.sec: m for m in messages if m.header.stamp.sec in good}


def test_whole_masks_and_whole_extent_boxes_over_dds(domain_id, tmp_path, ros) -> None:
    model = grown_bundled_model(tmp_path / "amodal.onnx")
    node = start_node(domain_id, tmp_path, model_path=str(model), depth_wait_ms=60.0, tracking=False)
    try:
        sent, before, after = rgbd_around_parameter(ros, node, domain_id, "depth_amodal_extent", True)
        plain, whole = _good_frames(before, sent), _good_frames(after, sent)
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
