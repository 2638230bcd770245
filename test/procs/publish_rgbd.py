"""Publish colour + registered depth + CameraInfo of synthetic scenes, good and broken, as another process.

usage: publish_rgbd.py NODE_FQN RATE_HZ
Frame i has stamp sec = 200 + i and shows scene ``scene_seed(SEED, i % SCENES)``; its CameraInfo
and depth (sensor artefacts on) are published just before it with the same stamp, broken
as the plan says. Prints one JSON list: per frame its index, label and stamp.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import rclpy
from publish_frames import finish  # the same folder: run as a script, it is on sys.path
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from robot_instseg.geometry.intrinsics import Intrinsics
from robot_instseg.io.image_encodings import encode_raw
from robot_instseg.ros.tools.play import camera_info_message, depth_message
from robot_instseg.synthetic.depth import render_depth, sensor_depth
from robot_instseg.synthetic.scenes import generate_scene, scene_seed

SEED, SCENES, FIRST_SEC = 77, 4, 200
# label -> what happens to the depth / CameraInfo of that frame; the node must publish 2D for every frame
PLAN = (["colour_only"] * 3 + ["good"] * 8 + ["half_res", "wrong_encoding", "all_zero", "all_nan", "fx_zero",
        "size_mismatch", "late", "good", "good"])


def scene_inputs(index: int):
    scene = generate_scene(scene_seed(SEED, index % SCENES))
    truth = render_depth(scene)
    return scene.render_rgb(), sensor_depth(truth, scene.seed), truth.intrinsics


def frame_messages(index: int, label: str) -> tuple:
    """(label, CameraInfo, depth Image or None, colour Image) of frame ``index``, broken as ``label`` says."""
    rgb, depth, k = scene_inputs(index)
    header = Header(frame_id="camera_optical")
    header.stamp.sec = FIRST_SEC + index
    info = camera_info_message(k, header)
    depth_msg = depth_message(depth, header)
    if label == "colour_only":
        depth_msg = None
    elif label == "half_res":  # the same field of view at half the resolution: scaled, still 3D
        depth_msg = depth_message(depth[::2, ::2], header)
    elif label == "wrong_encoding":
        depth_msg.encoding = "mono8"
        depth_msg.step = depth_msg.width
        depth_msg.data = bytes(depth_msg.width * depth_msg.height)
    elif label == "all_zero":
        depth_msg.data = bytes(len(depth_msg.data))
    elif label == "all_nan":
        nan = np.full(depth.shape, np.nan, np.float32)
        depth_msg = Image(header=header, height=nan.shape[0], width=nan.shape[1], encoding="32FC1",
                          is_bigendian=0, step=nan.shape[1] * 4)
        depth_msg.data = nan.tobytes()
    elif label == "fx_zero":
        info = camera_info_message(Intrinsics(0.0, 0.0, k.cx, k.cy, k.width, k.height), header)
    elif label == "size_mismatch":
        depth_msg = depth_message(depth[60:420], header)  # 640x360: another field of view
    h, w, step, data = encode_raw(rgb, "rgb8")
    rgb_msg = Image(header=header, height=h, width=w, encoding="rgb8", is_bigendian=0, step=step)
    rgb_msg.data = data
    return label, info, depth_msg, rgb_msg


def rgbd_publishers(name: str, fqn: str):
    """(node, colour, depth and CameraInfo publishers to seg_node ``fqn``, reliable), once it has subscribed."""
    rclpy.init()
    node = rclpy.create_node(name)
    qos = QoSProfile(depth=10)
    pub_rgb = node.create_publisher(Image, f"{fqn}/image", qos)
    pub_depth = node.create_publisher(Image, f"{fqn}/depth", qos)
    pub_info = node.create_publisher(CameraInfo, f"{fqn}/camera_info", qos)
    deadline = time.monotonic() + 30
    while min(p.get_subscription_count() for p in (pub_rgb, pub_depth, pub_info)) == 0 and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    return node, pub_rgb, pub_depth, pub_info


def main(fqn: str, rate: float) -> int:
    node, pub_rgb, pub_depth, pub_info = rgbd_publishers("rgbd_publisher", fqn)
    frames = [frame_messages(index, label) for index, label in enumerate(PLAN)]
    sent, late = [], []
    for index, (label, info, depth_msg, rgb_msg) in enumerate(frames):
        # CameraInfo first, after a quiet spell: a small sample sent right behind a 900 KB image can be
        # dropped by a full loopback socket buffer, and a reliable reader then holds every later sample on
        # that topic until the writer's next heartbeat repairs it (Fast DDS: 3 s), far past depth_wait_ms.
        pub_info.publish(info)
        time.sleep(0.03)
        if label == "late":
            late.append(depth_msg)
        elif depth_msg is not None:
            pub_depth.publish(depth_msg)
        # Depth ahead of colour, spaced: one 1.5 MB burst overflows the default 212 KB socket buffer of
        # loopback UDP, and a reliable DDS writer repairs the loss only at its next heartbeat (Fast DDS: 3 s).
        time.sleep(0.1)
        pub_rgb.publish(rgb_msg)
        sent.append({"index": index, "label": label, "sec": FIRST_SEC + index})
        time.sleep(max(1.0 / rate - 0.13, 0.0))
        for stale in late:  # a whole period after its colour frame: far past depth_wait_ms
            pub_depth.publish(stale)
            time.sleep(0.05)  # let it drain before the next CameraInfo
        late.clear()
    return finish(node, sent)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2])))
