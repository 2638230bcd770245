"""Publish three cameras of one robot into one node, as their drivers would (reliable), from another process.

usage: publish_cameras.py NODE_FQN RATE_HZ
- head:  640x480 rgb8 with registered depth and CameraInfo (an RGB-D camera), frame_id head_optical
- wrist: 320x240 JPEG on image/compressed, with a corrupt JPEG and two decompression bombs among its frames
- base:  800x600 bgr8, colour only
Frame i of every camera has stamp sec = 300 + i, nanosec = the camera's index (so each output names its
camera by stamp as well as by frame_id). The three cameras' frames of one period go out back to back.
Prints one JSON list: per frame its camera, index, label and stamp.
"""

from __future__ import annotations

import sys
import time

import cv2
import rclpy
from publish_frames import finish, jpeg_with_size, png_header  # the same folder: on sys.path as a script
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from robot_instseg.io.image_encodings import encode_raw
from robot_instseg.ros.tools.play import camera_info_message, depth_message
from robot_instseg.synthetic.depth import render_depth, sensor_depth
from robot_instseg.synthetic.scenes import generate_scene

FIRST_SEC = 300
CAMERAS = ("head", "wrist", "base")
SIZES = {"head": (480, 640), "wrist": (240, 320), "base": (600, 800)}
FRAMES = 8
WRIST_PLAN = ["good", "corrupt_jpeg", "good", "png_bomb", "good", "jpeg_bomb", "good", "good"]


def header(camera: str, index: int) -> Header:
    head = Header(frame_id=f"{camera}_optical")
    head.stamp.sec, head.stamp.nanosec = FIRST_SEC + index, CAMERAS.index(camera)
    return head


def label(camera: str, index: int) -> str:
    return WRIST_PLAN[index] if camera == "wrist" else "good"


def colour_message(camera: str, index: int):
    """The image message of frame ``index`` of ``camera`` (tests rebuild it to segment it themselves)."""
    h, w = SIZES[camera]
    scene = generate_scene(5000 + 10 * CAMERAS.index(camera) + index % 4, h, w)
    rgb = scene.render_rgb()
    kind = label(camera, index)
    if camera == "wrist":
        good = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
        data = {"good": good, "corrupt_jpeg": b"\xff\xd8" + bytes(range(256)) * 20 + b"\xff\xd9",
                "png_bomb": png_header(30000, 30000), "jpeg_bomb": jpeg_with_size(good, 65000, 65000)}[kind]
        return CompressedImage(header=header(camera, index), format="jpeg", data=data), scene
    encoding = "bgr8" if camera == "base" else "rgb8"
    height, width, step, data = encode_raw(rgb, encoding)
    msg = Image(header=header(camera, index), height=height, width=width, encoding=encoding, is_bigendian=0,
                step=step)
    msg.data = data
    return msg, scene


def main(fqn: str, rate: float) -> int:
    rclpy.init()
    node = rclpy.create_node("robot_cameras")
    qos = QoSProfile(depth=10)
    pubs = {"head": node.create_publisher(Image, f"{fqn}/head/image", qos),
            "wrist": node.create_publisher(CompressedImage, f"{fqn}/wrist/image/compressed", qos),
            "base": node.create_publisher(Image, f"{fqn}/base/image", qos)}
    depth_pub = node.create_publisher(Image, f"{fqn}/head/depth", qos)
    info_pub = node.create_publisher(CameraInfo, f"{fqn}/head/camera_info", qos)
    every = [*pubs.values(), depth_pub, info_pub]
    deadline = time.monotonic() + 30
    while min(p.get_subscription_count() for p in every) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    sent = []
    for index in range(FRAMES):
        messages = {camera: colour_message(camera, index) for camera in CAMERAS}
        truth = render_depth(messages["head"][1])
        info_pub.publish(camera_info_message(truth.intrinsics, header("head", index)))
        time.sleep(0.03)  # a small sample behind a large one can wait for a heartbeat (publish_rgbd.py)
        depth_pub.publish(depth_message(sensor_depth(truth, messages["head"][1].seed), header("head", index)))
        time.sleep(0.1)
        for camera in CAMERAS:
            pubs[camera].publish(messages[camera][0])
            sent.append({"camera": camera, "index": index, "label": label(camera, index),
                         "sec": FIRST_SEC + index, "nanosec": CAMERAS.index(camera)})
        time.sleep(max(1.0 / rate - 0.13, 0.0))
    from rclpy.duration import Duration

    for pub in every:  # a reliable writer destroyed too early loses what it has not delivered (1.4 MB frames)
        pub.wait_for_all_acked(Duration(seconds=15))
    return finish(node, sent)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2])))
