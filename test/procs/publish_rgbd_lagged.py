"""Publish colour, then its registered depth LAG_MS later, with CameraInfo first: a driver whose depth trails.

usage: publish_rgbd_lagged.py NODE_FQN RATE_HZ LAG_MS COUNT
Frame i has stamp sec = 300 + i and shows a 320x240 synthetic scene (small frames: the lag, not the
transport, is what is measured). Prints one JSON list: per frame its index and stamp.
"""

from __future__ import annotations

import sys
import time

from publish_frames import finish  # the same folder: run as a script, it is on sys.path
from publish_rgbd import rgbd_publishers
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from robot_instseg.io.image_encodings import encode_raw
from robot_instseg.ros.tools.play import camera_info_message, depth_message
from robot_instseg.synthetic.depth import render_depth, sensor_depth
from robot_instseg.synthetic.scenes import generate_scene, scene_seed

FIRST_SEC = 300


def frame_messages(index: int) -> tuple[CameraInfo, Image, Image]:
    scene = generate_scene(scene_seed(78, index % 4), 240, 320)
    truth = render_depth(scene)
    header = Header(frame_id="camera_optical")
    header.stamp.sec = FIRST_SEC + index
    h, w, step, data = encode_raw(scene.render_rgb(), "rgb8")
    colour = Image(header=header, height=h, width=w, encoding="rgb8", is_bigendian=0, step=step)
    colour.data = data
    return camera_info_message(truth.intrinsics, header), colour, depth_message(sensor_depth(truth, scene.seed), header)


def main(fqn: str, rate: float, lag_ms: float, count: int) -> int:
    node, pub_rgb, pub_depth, pub_info = rgbd_publishers("rgbd_lagged_publisher", fqn)
    frames = [frame_messages(index) for index in range(count)]
    sent = []
    for index, (info, colour, depth) in enumerate(frames):
        pub_info.publish(info)
        time.sleep(0.02)
        started = time.monotonic()
        pub_rgb.publish(colour)
        time.sleep(max(lag_ms / 1e3 - (time.monotonic() - started), 0.0))
        pub_depth.publish(depth)
        sent.append({"index": index, "sec": FIRST_SEC + index})
        time.sleep(max(1.0 / rate - lag_ms / 1e3 - 0.02, 0.0))
    return finish(node, sent)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])))
