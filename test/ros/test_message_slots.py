"""Messages built slot by slot (ros.message_slots) equal the generated constructors' and serialise."""

from __future__ import annotations

import array
import math

import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, RegionOfInterest
from std_msgs.msg import Header

from robot_instseg.engine.frame_pipeline import resolved
from robot_instseg.engine.segmenter import SegmenterConfig, load_segmenter
from robot_instseg.geometry.frame_3d import frame_3d
from robot_instseg.ros import message_slots as slots
from robot_instseg.ros.convert import instances_msg, labels_msg
from robot_instseg.synthetic.depth import render_depth, sensor_depth
from robot_instseg.synthetic.scenes import generate_scene
from robot_instseg_msgs.msg import Instance, InstanceArray


def _same(a, b, path: str = "") -> list[str]:
    """Paths of the fields where ``a`` and ``b`` differ (NaN equals NaN)."""
    if hasattr(a, "get_fields_and_field_types"):
        return [p for f in a.get_fields_and_field_types() for p in _same(getattr(a, f), getattr(b, f), f"{path}.{f}")]
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path} length"]
        return [p for k, (x, y) in enumerate(zip(a, b)) for p in _same(x, y, f"{path}[{k}]")]
    nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return [] if nan or a == b else [path]


def test_the_slot_layout_is_this_rosidl_s() -> None:
    assert slots.SLOTS_MATCH  # else every builder falls back to the constructors and the tests below test those


def test_a_built_instance_equals_the_generated_one_and_serialises() -> None:
    header = Header(frame_id="cam")
    header.stamp.sec = 7
    mask = np.array([[0, 255, 255], [255, 0, 0]], np.uint8)
    fields = {"id": 3, "track_id": 9, "class_id": 2, "class_name": "mug", "score": 0.75,
              "bbox": slots.region(1, 2, 3, 2), "mask": slots.image(mask, "mono8", header), "same_object_as": 1,
              "has_3d": True, "centroid": slots.xyz(Point, (0.1, 0.2, 0.3)), "size": slots.xyz(Vector3, (1, 2, 3)),
              "box_center": slots.pose((0.1, 0.2, 0.3), (0.0, 0.0, 0.6, 0.8)),
              "box_size": slots.xyz(Vector3, (0.5, 0.25, 0.125)), "valid_points": 40, "depth_coverage": 0.5,
              "has_amodal": False, "amodal_bbox": slots.region(0, 0, 0, 0), "amodal_mask": slots.empty_image(),
              "occluded_fraction": 0.0, "occluded_by": array.array("H", [4, 1])}
    built = slots.build(Instance, fields)
    generated = Instance(id=3, track_id=9, class_id=2, class_name="mug", score=0.75,
                         bbox=RegionOfInterest(x_offset=1, y_offset=2, width=3, height=2),
                         mask=Image(header=header, height=2, width=3, encoding="mono8", step=3, data=mask.tobytes()),
                         same_object_as=1, has_3d=True, centroid=Point(x=0.1, y=0.2, z=0.3),
                         size=Vector3(x=1.0, y=2.0, z=3.0),
                         box_center=Pose(position=Point(x=0.1, y=0.2, z=0.3), orientation=Quaternion(z=0.6, w=0.8)),
                         box_size=Vector3(x=0.5, y=0.25, z=0.125), valid_points=40, depth_coverage=0.5,
                         occluded_by=[4, 1])
    assert built == generated
    assert deserialize_message(serialize_message(built), Instance) == generated
    assert slots._generated(Instance, fields) == built  # the fallback builds the same message


def test_every_builder_falls_back_to_the_generated_constructors_alike(monkeypatch) -> None:
    """Where the slot layout does not match (SLOTS_MATCH false), each builder makes the same message the slow way."""
    header = Header(frame_id="cam")
    makers = [lambda: slots.region(4, 5, 6, 7), lambda: slots.xyz(Point, (1, 2, 3)), lambda: slots.xyz(Vector3, (4, 5, 6)),
              lambda: slots.pose((1, 2, 3), (0.0, 0.6, 0.0, 0.8)), slots.empty_header, slots.empty_image,
              lambda: slots.image(np.arange(12, dtype=np.uint16).reshape(3, 4), "mono16", header)]
    fast = [make() for make in makers]
    monkeypatch.setattr(slots, "SLOTS_MATCH", False)
    slow = [make() for make in makers]
    assert all(type(a) is type(b) and a == b for a, b in zip(fast, slow))
    assert slow[-1].step == 8 and bytes(slow[-1].data) == np.arange(12, dtype=np.uint16).tobytes()


def _reference_instances(visible, header: Header, fusion) -> InstanceArray:
    """The InstanceArray the way the generated constructors and setters build it, field by field."""
    out = InstanceArray(header=header, image_width=visible.image_shape[1], image_height=visible.image_shape[0])
    for i in range(len(visible)):
        x0, y0, x1, y1 = (int(v) for v in visible.mask_boxes[i])
        inst = Instance(id=i + 1, track_id=int(visible.track_ids[i]), class_id=int(visible.class_ids[i]),
                        class_name=visible.class_names[i], score=float(visible.scores[i]),
                        same_object_as=int(visible.alternative_of[i]) + 1)
        inst.bbox = RegionOfInterest(x_offset=x0, y_offset=y0, width=x1 - x0, height=y1 - y0)
        crop = visible.masks[i].astype(np.uint8) * 255
        inst.mask = Image(header=header, height=crop.shape[0], width=crop.shape[1], encoding="mono8",
                          step=crop.shape[1], data=crop.tobytes())
        geo = fusion.instances[i]
        nan = float("nan")
        if geo is None:
            inst.centroid, inst.size, inst.box_size = Point(x=nan, y=nan, z=nan), Vector3(x=nan, y=nan, z=nan), \
                Vector3(x=nan, y=nan, z=nan)
            inst.box_center.position = Point(x=nan, y=nan, z=nan)
        else:
            inst.has_3d, inst.valid_points, inst.depth_coverage = True, int(geo.valid_points), float(geo.coverage)
            inst.centroid = Point(x=float(geo.centroid[0]), y=float(geo.centroid[1]), z=float(geo.centroid[2]))
            inst.size = Vector3(x=float(geo.extent[0]), y=float(geo.extent[1]), z=float(geo.extent[2]))
            qx, qy, qz, qw = geo.box_quaternion()
            inst.box_center = Pose(position=Point(x=float(geo.box_center[0]), y=float(geo.box_center[1]),
                                                  z=float(geo.box_center[2])),
                                   orientation=Quaternion(x=qx, y=qy, z=qz, w=qw))
            inst.box_size = Vector3(x=float(geo.box_size[0]), y=float(geo.box_size[1]), z=float(geo.box_size[2]))
        inst.occluded_by = [k + 1 for k in fusion.occluded_by[i]]
        out.instances.append(inst)
    return out


def test_a_frame_s_instances_and_labels_equal_the_generated_messages() -> None:
    scene = generate_scene(4242, min_objects=9, max_objects=12, min_visible=0.2)
    truth = render_depth(scene)
    output = resolved(load_segmenter(None, SegmenterConfig()).segment(scene.render_rgb()))
    visible = output.visible
    visible.track_ids = np.arange(1, len(visible) + 1)
    fusion = frame_3d(visible, sensor_depth(truth, scene.seed), truth.intrinsics, output.labels)
    assert len(visible) >= 5 and any(g is not None for g in fusion.instances)
    assert any(fusion.occluded_by), "the scene should hold an occlusion order"
    header = Header(frame_id="camera")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    built = deserialize_message(serialize_message(instances_msg(visible, header, fusion)), InstanceArray)
    reference = deserialize_message(serialize_message(_reference_instances(visible, header, fusion)), InstanceArray)
    assert _same(built, reference) == []
    labels = deserialize_message(serialize_message(labels_msg(output.labels, header)), Image)
    assert labels.encoding == "mono16" and labels.step == 2 * labels.width and labels.header == header
    np.testing.assert_array_equal(np.frombuffer(bytes(labels.data), np.uint16).reshape(labels.height, labels.width),
                                  output.labels)
