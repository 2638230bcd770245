"""sensor_msgs images <-> numpy, and Detections -> the node's output messages.

No cv_bridge (it has no wheel): decoding is robot_instseg.io.image_encodings, shared with the
bag tools. Instance ``id`` is the detection's index + 1, the value it owns in the label
image; masks are the visible (label-image) masks, so both outputs agree pixel for pixel.
"""

from __future__ import annotations

import array
from typing import Optional

import cv2
import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from sensor_msgs.msg import CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from robot_instseg.engine.occlusion import OcclusionOrder, occlusion_order
from robot_instseg.engine.types import Detections
from robot_instseg.geometry.fusion import FrameFusion, Instance3D
from robot_instseg.io.image_encodings import decode_compressed, decode_raw
from robot_instseg.io.overlay import instance_colour
from robot_instseg.node.params import DEFAULT_MAX_INPUT_PIXELS
from robot_instseg.ros import message_slots as slots
from robot_instseg_msgs.msg import Instance, InstanceArray


def image_from_msg(msg, max_pixels: int = DEFAULT_MAX_INPUT_PIXELS) -> tuple[np.ndarray, str]:
    """(uint8 image, channel order) from an Image or CompressedImage; InputError when malformed or
    larger than ``max_pixels``."""
    if isinstance(msg, CompressedImage):
        return decode_compressed(msg.format, msg.data, max_pixels)
    return decode_raw(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian), max_pixels)


def image_msg(pixels: np.ndarray, encoding: str, header: Header) -> Image:
    """A sensor_msgs/Image holding ``pixels`` (HxW or HxWxC)."""
    return slots.image(pixels, encoding, header)


def labels_msg(labels: np.ndarray, header: Header) -> Image:
    """The mono16 instance-id image as a sensor_msgs/Image."""
    return image_msg(labels.astype(np.uint16, copy=False), "mono16", header)


_NAN3 = (float("nan"),) * 3
_IDENTITY = (0.0, 0.0, 0.0, 1.0)


def _fields_3d(geo: Optional[Instance3D]) -> dict:
    """The 3D fields of an Instance from ``geo``, or NaN (has_3d false, orientation identity, no points) when
    there is none."""
    if geo is None:
        nan = slots.xyz(Point, _NAN3)
        return {"has_3d": False, "centroid": nan, "size": slots.xyz(Vector3, _NAN3),
                "box_center": slots.pose(_NAN3, _IDENTITY), "box_size": slots.xyz(Vector3, _NAN3),
                "valid_points": 0, "depth_coverage": 0.0}
    return {"has_3d": True, "centroid": slots.xyz(Point, geo.centroid), "size": slots.xyz(Vector3, geo.extent),
            "box_center": slots.pose(geo.box_center, geo.box_quaternion()), "box_size": slots.xyz(Vector3, geo.box_size),
            "valid_points": int(geo.valid_points), "depth_coverage": float(geo.coverage)}


def _mono8(mask: np.ndarray, header: Header) -> Image:
    return slots.image(np.multiply(mask, 255, dtype=np.uint8), "mono8", header)


def instances_msg(detections: Detections, header: Header, fusion: Optional[FrameFusion] = None,
                  depth_status: str = "") -> InstanceArray:
    """InstanceArray of ``detections`` (already cut to their visible masks), with their 3D from ``fusion`` and,
    from a model with the amodal head, their whole masks and occlusion order (``engine.occlusion``); an order
    read from depth (``fusion.occluded_by``) takes the place of the whole masks' one."""
    order = occlusion_order(detections) if detections.has_amodal else None
    h, w = detections.image_shape
    out = InstanceArray(header=header, image_width=int(w), image_height=int(h),
                        depth_status=depth_status if fusion is None else "")
    tracked = len(detections.track_ids) > 0
    boxes = detections.mask_boxes.tolist()
    class_ids, scores = detections.class_ids.tolist(), detections.scores.tolist()
    track_ids = detections.track_ids.tolist() if tracked else [0] * len(detections)
    same_as = (detections.alternative_of + 1).tolist()
    names = detections.class_names
    depth_order = fusion.occluded_by if fusion is not None else None  # read from depth: it orders better
    for i in range(len(detections)):
        x0, y0, x1, y1 = boxes[i]
        mask = detections.masks[i] if detections.masks else np.zeros((y1 - y0, x1 - x0), bool)
        fields = {"id": i + 1, "track_id": track_ids[i], "class_id": class_ids[i],
                  "class_name": names[i] if i < len(names) else "", "score": scores[i],
                  "bbox": slots.region(x0, y0, x1 - x0, y1 - y0), "mask": _mono8(mask, header),
                  "same_object_as": same_as[i],
                  **_fields_3d(fusion.instances[i] if fusion is not None else None)}
        fields.update(_amodal_fields(order, i, header))
        if depth_order is not None:
            fields["occluded_by"] = array.array("H", [k + 1 for k in depth_order[i]])
        out.instances.append(slots.build(Instance, fields))
    return out


def _amodal_fields(order: Optional[OcclusionOrder], i: int, header: Header) -> dict:
    """The whole-object fields of instance ``i``: defaults where the model has no amodal head (``order`` None)."""
    if order is None:
        return {"has_amodal": False, "amodal_bbox": slots.region(0, 0, 0, 0), "amodal_mask": slots.empty_image(),
                "occluded_fraction": 0.0, "occluded_by": array.array("H")}
    x0, y0, x1, y1 = order.amodal_boxes[i].tolist()
    return {"has_amodal": True, "amodal_bbox": slots.region(x0, y0, x1 - x0, y1 - y0),
            "amodal_mask": _mono8(order.amodal_masks[i], header),
            "occluded_fraction": float(order.occluded_fraction[i]),
            "occluded_by": array.array("H", [k + 1 for k in order.occluded_by[i]])}


OUTLINE_TOLERANCE_PX = 1.0


def markers_msg(detections: Detections, header: Header, namespace: str = "instances",
                lifetime_s: float = 0.5, fusion: Optional[FrameFusion] = None) -> MarkerArray:
    """Outlines (LINE_LIST in pixel units, z = 0) and text labels, and with ``fusion`` the 3D boxes and
    distances; a DELETEALL first clears old ones."""
    out = MarkerArray()
    out.markers.append(Marker(header=header, ns=namespace, action=Marker.DELETEALL))
    life = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1) * 1e9))
    for i in range(len(detections)):
        r, g, b = instance_colour(detections, i)
        rgba = ColorRGBA(r=r / 255.0, g=g / 255.0, b=b / 255.0, a=1.0)
        outline = Marker(header=header, ns=namespace, id=2 * i, type=Marker.LINE_LIST, action=Marker.ADD,
                         lifetime=life, color=rgba)
        outline.scale.x = 1.0
        outline.pose.orientation.w = 1.0
        for poly in detections.to_polygons(i):
            # A display outline: within OUTLINE_TOLERANCE_PX of the mask's, at a tenth of the points to build.
            poly = cv2.approxPolyDP(poly.astype(np.float32).reshape(-1, 1, 2), OUTLINE_TOLERANCE_PX, True).reshape(-1, 2)
            ends = np.stack([poly, np.roll(poly, -1, axis=0)], axis=1).reshape(-1, 2).tolist()
            outline.points.extend(Point(x=x, y=y) for x, y in ends)
        text = Marker(header=header, ns=namespace, id=2 * i + 1, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                      lifetime=life, color=rgba)
        text.scale.z = 12.0
        text.pose.orientation.w = 1.0
        x0, y0 = float(detections.boxes[i][0]), float(detections.boxes[i][1])
        text.pose.position = Point(x=x0, y=y0, z=0.0)
        name = detections.class_names[i] if i < len(detections.class_names) else str(int(detections.class_ids[i]))
        track = int(detections.track_ids[i]) if len(detections.track_ids) else 0
        text.text = f"{i + 1} {name} {detections.scores[i]:.2f}" + (f" #{track}" if track else "")
        out.markers.extend([outline, text])
    if fusion is not None:
        out.markers.extend(boxes_3d_markers(detections, fusion, header, life))
    return out


def stamp_seconds(header: Header) -> float:
    """A header's stamp as float seconds."""
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def stamp_ns(header: Header) -> int:
    """A header's stamp in integer nanoseconds (exact: the key that pairs depth and CameraInfo with a frame)."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


POINT_FIELDS = [PointField(name="x", offset=0, datatype=PointField.FLOAT32, count=1),
                PointField(name="y", offset=4, datatype=PointField.FLOAT32, count=1),
                PointField(name="z", offset=8, datatype=PointField.FLOAT32, count=1),
                PointField(name="instance_id", offset=12, datatype=PointField.UINT32, count=1)]
_POINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("instance_id", "<u4")])


def points_msg(detections: Detections, fusion: FrameFusion, header: Header, stride: int = 1) -> PointCloud2:
    """One unorganised PointCloud2 of every instance's kept depth points (metres, the camera optical
    frame of ``header``), each with ``instance_id`` = its instance's id, its value in ~/labels. An
    alternative reading of another instance (same_object_as) owns no label pixel and adds no point."""
    chunks = []
    for i, geo in enumerate(fusion.instances):
        if geo is None or not len(geo.points) or detections.alternative_of[i] >= 0:
            continue
        pts = geo.points[::max(int(stride), 1)]
        chunk = np.empty(len(pts), _POINT_DTYPE)
        chunk["x"], chunk["y"], chunk["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
        chunk["instance_id"] = i + 1
        chunks.append(chunk)
    cloud = np.concatenate(chunks) if chunks else np.empty(0, _POINT_DTYPE)
    msg = PointCloud2(header=header, height=1, width=len(cloud), fields=POINT_FIELDS, is_bigendian=False,
                      point_step=_POINT_DTYPE.itemsize, row_step=_POINT_DTYPE.itemsize * len(cloud), is_dense=True)
    msg.data = cloud.tobytes()
    return msg


def boxes_3d_markers(detections: Detections, fusion: FrameFusion, header: Header, lifetime: Duration,
                     namespace: str = "boxes_3d") -> list[Marker]:
    """For RViz: each instance's oriented box (a translucent CUBE) and, at its centroid, its class and distance."""
    markers = []
    for i, geo in enumerate(fusion.instances):
        if geo is None:
            continue
        r, g, b = instance_colour(detections, i)
        centre = np.asarray(geo.box_center, np.float64)
        qx, qy, qz, qw = geo.box_quaternion()
        cube = Marker(header=header, ns=namespace, id=2 * i, type=Marker.CUBE, action=Marker.ADD, lifetime=lifetime,
                      color=ColorRGBA(r=r / 255.0, g=g / 255.0, b=b / 255.0, a=0.45))
        cube.pose = Pose(position=Point(x=centre[0], y=centre[1], z=centre[2]),
                         orientation=Quaternion(x=qx, y=qy, z=qz, w=qw))
        size = np.maximum(np.asarray(geo.box_size, np.float64), 0.005)  # RViz hides a zero-thickness cube
        cube.scale = Vector3(x=size[0], y=size[1], z=size[2])
        c = np.asarray(geo.centroid, np.float64)
        text = Marker(header=header, ns=namespace, id=2 * i + 1, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                      lifetime=lifetime, color=ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0), text=(
                          f"{i + 1} {detections.class_names[i] if i < len(detections.class_names) else ''} "
                          f"{geo.distance:.2f} m"))
        text.pose = Pose(position=Point(x=c[0], y=c[1], z=c[2]), orientation=Quaternion(w=1.0))
        text.scale.z = 0.03
        markers.extend([cube, text])
    return markers
