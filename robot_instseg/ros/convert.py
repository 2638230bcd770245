"""sensor_msgs images <-> numpy, and Detections -> the node's output messages.

No cv_bridge (it has no wheel): decoding is robot_instseg.io.image_encodings, shared with the
bag tools. Instance ``id`` is the detection's index + 1, the value it owns in the label
image; masks are the visible (label-image) masks, so both outputs agree pixel for pixel.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from sensor_msgs.msg import CompressedImage, Image, RegionOfInterest
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from robot_instseg.engine.types import Detections
from robot_instseg.io.image_encodings import decode_compressed, decode_raw
from robot_instseg.io.overlay import colour
from robot_instseg.node.params import DEFAULT_MAX_INPUT_PIXELS
from robot_instseg_msgs.msg import Instance, InstanceArray


def image_from_msg(msg, max_pixels: int = DEFAULT_MAX_INPUT_PIXELS) -> tuple[np.ndarray, str]:
    """(uint8 image, channel order) from an Image or CompressedImage; InputError when malformed or
    larger than ``max_pixels``."""
    if isinstance(msg, CompressedImage):
        return decode_compressed(msg.format, msg.data, max_pixels)
    return decode_raw(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian), max_pixels)


def image_msg(array: np.ndarray, encoding: str, header: Header) -> Image:
    """A sensor_msgs/Image holding ``array`` (HxW or HxWxC, contiguous)."""
    array = np.ascontiguousarray(array)
    msg = Image(header=header, height=int(array.shape[0]), width=int(array.shape[1]), encoding=encoding,
                is_bigendian=0, step=int(array.strides[0]))
    msg.data = array.tobytes()
    return msg


def labels_msg(labels: np.ndarray, header: Header) -> Image:
    """The mono16 instance-id image as a sensor_msgs/Image."""
    return image_msg(labels.astype(np.uint16, copy=False), "mono16", header)


def instances_msg(detections: Detections, header: Header) -> InstanceArray:
    """InstanceArray of ``detections`` (already cut to their visible masks)."""
    h, w = detections.image_shape
    out = InstanceArray(header=header, image_width=int(w), image_height=int(h))
    nan = float("nan")
    for i in range(len(detections)):
        x0, y0, x1, y1 = (int(v) for v in detections.mask_boxes[i])
        inst = Instance(id=i + 1, track_id=int(detections.track_ids[i]) if len(detections.track_ids) else 0,
                        class_id=int(detections.class_ids[i]),
                        class_name=detections.class_names[i] if i < len(detections.class_names) else "",
                        score=float(detections.scores[i]),
                        bbox=RegionOfInterest(x_offset=x0, y_offset=y0, width=x1 - x0, height=y1 - y0,
                                              do_rectify=False),
                        same_object_as=int(detections.alternative_of[i]) + 1,
                        has_3d=False, centroid=Point(x=nan, y=nan, z=nan))
        inst.size.x = inst.size.y = inst.size.z = nan
        mask = detections.masks[i] if detections.masks else np.zeros((y1 - y0, x1 - x0), bool)
        inst.mask = image_msg(mask.astype(np.uint8) * 255, "mono8", header)
        out.instances.append(inst)
    return out


def markers_msg(detections: Detections, header: Header, namespace: str = "instances",
                lifetime_s: float = 0.5) -> MarkerArray:
    """Outlines (LINE_LIST in pixel units, z = 0) and text labels; a DELETEALL first clears old ones."""
    out = MarkerArray()
    out.markers.append(Marker(header=header, ns=namespace, action=Marker.DELETEALL))
    life = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1) * 1e9))
    for i in range(len(detections)):
        r, g, b = colour(int(detections.class_ids[i]))
        rgba = ColorRGBA(r=r / 255.0, g=g / 255.0, b=b / 255.0, a=1.0)
        outline = Marker(header=header, ns=namespace, id=2 * i, type=Marker.LINE_LIST, action=Marker.ADD,
                         lifetime=life, color=rgba)
        outline.scale.x = 1.0
        outline.pose.orientation.w = 1.0
        for poly in detections.to_polygons(i):
            for a, b2 in zip(poly, np.roll(poly, -1, axis=0)):
                outline.points.append(Point(x=float(a[0]), y=float(a[1]), z=0.0))
                outline.points.append(Point(x=float(b2[0]), y=float(b2[1]), z=0.0))
        text = Marker(header=header, ns=namespace, id=2 * i + 1, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                      lifetime=life, color=rgba)
        text.scale.z = 12.0
        text.pose.orientation.w = 1.0
        x0, y0 = float(detections.boxes[i][0]), float(detections.boxes[i][1])
        text.pose.position = Point(x=x0, y=y0, z=0.0)
        name = detections.class_names[i] if i < len(detections.class_names) else str(int(detections.class_ids[i]))
        text.text = f"{i + 1} {name} {detections.scores[i]:.2f}"
        out.markers.extend([outline, text])
    return out


def stamp_seconds(header: Header) -> float:
    """A header's stamp as float seconds."""
    return header.stamp.sec + header.stamp.nanosec * 1e-9
