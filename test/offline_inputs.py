"""Inputs for the offline verbs' tests, written as a robot's drivers and recorder write them: an RGB-D bag,
a colour-only clip bag (objects that move, for tracking), a folder of images."""

from __future__ import annotations

from pathlib import Path

import cv2


def rgbd_bag(path: Path, scenes_n: int, skip_depth_of: int) -> list:
    """A bag as an RGB-D camera driver records it: colour, registered depth (16UC1) and CameraInfo per
    frame, same stamps; frame ``skip_depth_of`` has no depth. Returns the scenes."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from robot_instseg.io.image_encodings import encode_raw
    from robot_instseg.recording.bag_writer import BagWriter
    from robot_instseg.ros.tools.play import camera_info_message, depth_message
    from robot_instseg.synthetic.depth import render_depth, sensor_depth
    from robot_instseg.synthetic.scenes import generate_scene, scene_seed

    scenes = []
    writer = BagWriter(path, "mcap")
    try:
        for i in range(scenes_n):
            scene = generate_scene(scene_seed(5, i))
            truth = render_depth(scene)
            scenes.append((scene, truth))
            header = Header(frame_id="camera_color_optical_frame")
            header.stamp.sec, header.stamp.nanosec = 10 + i, 500
            t = (10 + i) * 10**9 + 500
            h, w, step, data = encode_raw(scene.render_rgb(), "rgb8")
            rgb = Image(header=header, height=h, width=w, encoding="rgb8", is_bigendian=0, step=step)
            rgb.data = data
            writer.write("/camera/color/camera_info", "sensor_msgs/msg/CameraInfo", t,
                         bytes(serialize_message(camera_info_message(truth.intrinsics, header))))
            writer.write("/camera/color/image_raw", "sensor_msgs/msg/Image", t, bytes(serialize_message(rgb)))
            if i != skip_depth_of:  # depth after colour in the bag, as it often is
                writer.write("/camera/aligned_depth_to_color/image_raw", "sensor_msgs/msg/Image", t + 1000,
                             bytes(serialize_message(depth_message(sensor_depth(truth, scene.seed), header))))
    finally:
        writer.close()
    return scenes


def clip_bag(path: Path, frames: int, seed: int = 7, rate_hz: float = 10.0) -> None:
    """A colour-only bag of one synthetic clip (``scenes --sequence``), rgb8 at ``rate_hz``, one stamp per
    frame, as a camera driver records it."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from robot_instseg.io.frame_sources import clip
    from robot_instseg.io.image_encodings import encode_raw
    from robot_instseg.recording.bag_writer import BagWriter

    writer = BagWriter(path, "mcap")
    try:
        for i, frame in enumerate(clip(seed, frames)):
            t = 100 * 10**9 + int(i * 1e9 / rate_hz)
            header = Header(frame_id="camera_color_optical_frame")
            header.stamp.sec, header.stamp.nanosec = divmod(t, 10**9)
            h, w, step, data = encode_raw(frame.rgb, "rgb8")
            msg = Image(header=header, height=h, width=w, encoding="rgb8", is_bigendian=0, step=step)
            msg.data = data
            writer.write("/camera/color/image_raw", "sensor_msgs/msg/Image", t, bytes(serialize_message(msg)))
    finally:
        writer.close()


def image_folder(path: Path, count: int, seed: int = 11) -> None:
    """``count`` synthetic scenes as PNG files in ``path`` (a subfolder holds some, as archives do)."""
    from robot_instseg.synthetic.scenes import generate_scene, scene_seed

    for i in range(count):
        target = path / ("more" if i % 3 == 2 else "") / f"img{i:03d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), cv2.cvtColor(generate_scene(scene_seed(seed, i), 240, 320).render_rgb(),
                                              cv2.COLOR_RGB2BGR))
