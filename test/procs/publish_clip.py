"""Publish a synthetic clip (objects sliding, occluding, leaving and returning) as a camera would.

usage: publish_clip.py TOPIC RATE_HZ SEED FRAMES
Frame k of the clip has stamp 300 s + its clip time (dropped frames leave gaps). Prints one JSON
list: per published frame its clip index and stamp (sec, nanosec).
"""

from __future__ import annotations

import sys
import time

import rclpy
from publish_frames import finish  # the same folder: run as a script, it is on sys.path
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from robot_instseg.io.image_encodings import encode_raw
from robot_instseg.synthetic.sequences import generate_clip

OBJECTS, FIRST_SEC = 8, 300


def main(topic: str, rate: float, seed: int, frames: int) -> int:
    rclpy.init()
    node = rclpy.create_node("clip_publisher")
    pub = node.create_publisher(Image, topic, QoSProfile(depth=10))
    images = []
    for frame in generate_clip(seed, frames, OBJECTS):
        header = Header(frame_id="camera")
        ns = int(round((FIRST_SEC + frame.stamp_s) * 1e9))
        header.stamp.sec, header.stamp.nanosec = divmod(ns, 10**9)
        h, w, step, data = encode_raw(frame.scene.render_rgb(), "rgb8")
        msg = Image(header=header, height=h, width=w, encoding="rgb8", is_bigendian=0, step=step)
        msg.data = data
        images.append((frame.index, msg))
    deadline = time.monotonic() + 30
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    sent = []
    for index, msg in images:
        pub.publish(msg)
        sent.append({"index": index, "sec": msg.header.stamp.sec, "nanosec": msg.header.stamp.nanosec})
        time.sleep(1.0 / rate)
    return finish(node, sent)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
