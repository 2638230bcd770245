"""A publisher or subscriber process for the robot_instseg_msgs round-trip test.

``pub``: publishes a fully populated message of every type at 10 Hz until killed.
``sub``: waits (bounded) for one message of each type, prints them as JSON, exits.
"""

from __future__ import annotations

import array
import json
import math
import sys
import time

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, RegionOfInterest

from robot_instseg_msgs.msg import Instance, InstanceArray


def sample_instance(index: int, with_3d: bool) -> Instance:
    """A distinctive Instance: every field set to a value other than its default.

    Scores are multiples of 1/16 so float32 holds them exactly.
    """
    w, h = 7 + index, 5 + index
    mask = Image(height=h, width=w, encoding="mono8", is_bigendian=0, step=w,
                 data=bytes(((x * 31 + y * 17 + index) % 2) * 255 for y in range(h) for x in range(w)))
    mask.header.stamp.sec, mask.header.stamp.nanosec, mask.header.frame_id = 12, 345, "camera_optical"
    inst = Instance(id=index + 1, track_id=1000 + index, class_id=3 + index, class_name=f"cup_{index}",
                    score=0.5 + index / 16, bbox=RegionOfInterest(x_offset=10 + index, y_offset=20, width=w,
                                                                  height=h, do_rectify=False),
                    mask=mask, same_object_as=index, has_3d=with_3d)
    if index % 2:  # the whole-object fields of a model with the amodal head
        inst.has_amodal, inst.occluded_fraction, inst.occluded_by = True, 0.25, [index + 2, 1]
        inst.amodal_bbox.x_offset, inst.amodal_bbox.y_offset, inst.amodal_bbox.width = 8, 19, w + 2
        inst.amodal_bbox.height = h + 1
        inst.amodal_mask.height, inst.amodal_mask.width, inst.amodal_mask.encoding = h + 1, w + 2, "mono8"
        inst.amodal_mask.step, inst.amodal_mask.data = w + 2, bytes([255]) * ((h + 1) * (w + 2))
    if with_3d:
        inst.centroid.x, inst.centroid.y, inst.centroid.z = 0.1, -0.2, 0.75 + index
        inst.size.x, inst.size.y, inst.size.z = 0.05, 0.06, 0.07
    else:
        for vec in (inst.centroid, inst.size):
            vec.x = vec.y = vec.z = math.nan
    return inst


def sample_array() -> InstanceArray:
    msg = InstanceArray(image_width=640, image_height=480,
                        instances=[sample_instance(i, with_3d=i % 2 == 0) for i in range(3)])
    msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = 12, 345, "camera_optical"
    return msg


def to_plain(value):
    """Message -> JSON-able plain data, field by field (NaN as the string 'nan')."""
    if hasattr(value, "get_fields_and_field_types"):
        return {name: to_plain(getattr(value, name)) for name in value.get_fields_and_field_types()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray, array.array)):
        return list(value)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def main(role: str) -> int:
    rclpy.init()
    node = rclpy.create_node(f"msg_roundtrip_{role}")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    try:
        if role == "pub":
            pubs = [(node.create_publisher(InstanceArray, "roundtrip/array", qos), sample_array()),
                    (node.create_publisher(Instance, "roundtrip/instance", qos), sample_instance(5, True))]
            while rclpy.ok():
                for pub, msg in pubs:
                    pub.publish(msg)
                rclpy.spin_once(node, timeout_sec=0.1)
            return 0
        received: dict[str, object] = {}
        node.create_subscription(InstanceArray, "roundtrip/array",
                                 lambda m: received.setdefault("array", to_plain(m)), qos)
        node.create_subscription(Instance, "roundtrip/instance",
                                 lambda m: received.setdefault("instance", to_plain(m)), qos)
        deadline = time.monotonic() + 20.0
        while len(received) < 2 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        print(json.dumps(received))
        return 0 if len(received) == 2 else 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
