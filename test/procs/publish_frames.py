"""Publish a planned sequence of camera frames (good and malformed) on a topic, as another process.

usage: publish_frames.py TOPIC PLAN RATE_HZ [FIRST_SEC [RELIABILITY]]  (reliable by default, or best_effort)
Every frame's stamp is sec = FIRST_SEC (default 100) + index (nanosec 0), frame_id
'cam_<index>', so the test knows exactly which frame each output came from. Prints one JSON
list: what was sent. PUBLISH_START_AT (epoch seconds) holds the first frame until then, so that
several publisher processes start together.
"""

from __future__ import annotations

import json
import os
import sys
import time

import cv2
import numpy as np
import rclpy
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from robot_instseg.synthetic.scenes import generate_scene


def scene(i: int, h: int = 480, w: int = 640) -> np.ndarray:
    return generate_scene(1000 + i % 3, h, w).render_rgb()


def raw(rgb: np.ndarray, encoding: str = "rgb8", **override) -> dict:
    h, w = rgb.shape[:2]
    fields = {"encoding": encoding, "height": h, "width": w, "step": w * 3, "data": rgb.tobytes()}
    fields.update(override)
    return fields


def jpeg(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def plan(name: str) -> list[tuple[str, str, dict]]:
    """(label, kind, fields) per frame."""
    good = scene(0)
    if name.startswith("good"):
        n = int(name.split(":")[1]) if ":" in name else 5
        return [("good", "raw", raw(scene(i))) for i in range(n)]
    if name.startswith("small:"):  # 160x120: few fragments, so best_effort delivery survives a loaded machine
        return [("good", "raw", raw(scene(i, 120, 160))) for i in range(int(name.split(":")[1]))]
    if name.startswith("grey:"):  # uniform frames, one per listed grey value: grey:30,200,120
        return [("grey", "raw", raw(np.full((480, 640, 3), int(g), np.uint8))) for g in name[5:].split(",")]
    if name == "bad_raw":
        small = scene(1, 240, 320)
        return [("good", "raw", raw(good)),
                ("unknown_encoding", "raw", raw(good, encoding="rgb_fancy")),
                ("step_too_small", "raw", raw(good, step=100)),
                ("data_short", "raw", raw(good, data=good.tobytes()[:-7])),
                ("data_long", "raw", raw(good, data=good.tobytes() + b"\x00" * 9)),
                ("zero_size", "raw", raw(good, width=0, height=0, step=0, data=b"")),
                ("size_change", "raw", raw(small)),
                *[("good", "raw", raw(scene(i))) for i in range(4)]]
    if name == "bad_compressed":
        data = jpeg(good)
        return [("good", "jpeg", {"data": data}),
                ("corrupt_jpeg", "jpeg", {"data": b"\xff\xd8" + bytes(range(256)) * 20 + b"\xff\xd9"}),
                ("truncated_jpeg", "jpeg", {"data": data[: len(data) // 2]}),
                ("not_an_image", "jpeg", {"data": b"hello camera"}),
                *[("good", "jpeg", {"data": jpeg(scene(i))}) for i in range(4)]]
    if name == "hostile_raw":  # run the node with max_input_pixels 1000000
        big = np.zeros((800, 1600, 3), np.uint8)  # 1.28 MP
        return [("good", "raw", raw(good)),
                ("size_change", "raw", raw(scene(1, 240, 320))),  # warns first (the old logging crash)
                ("sliver", "raw", raw(np.full((1, 20000, 3), 90, np.uint8))),  # cv2.resize used to assert
                ("too_large", "raw", raw(big)),
                *[("good", "raw", raw(scene(i))) for i in range(4)]]
    if name == "hostile_compressed":
        return [("good", "jpeg", {"data": jpeg(good)}),
                ("jpeg_bomb", "jpeg", {"data": jpeg_with_size(jpeg(scene(1, 48, 64)), 65000, 65000)}),
                ("png_bomb", "jpeg", {"data": png_header(30000, 30000)}),
                *[("good", "jpeg", {"data": jpeg(scene(i))}) for i in range(4)]]
    raise SystemExit(f"unknown plan {name}")


def jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF0) claims another size: a decompression bomb in 1 KB."""
    sof = data.index(b"\xff\xc0")
    return data[:sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[sof + 9:]


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` grey pixels, with a tiny IDAT and IEND."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + \
        chunk(b"IEND", b"")


def frame_message(index: int, kind: str, fields: dict, first_sec: int = 100):
    """The message publish_frames sends for frame ``index`` of a plan (tests rebuild it to compare bytes)."""
    header = Header(frame_id=f"cam_{index}")
    header.stamp.sec = first_sec + index
    if kind == "jpeg":
        return CompressedImage(header=header, format="jpeg", data=fields["data"])
    msg = Image(header=header, height=fields["height"], width=fields["width"], encoding=fields["encoding"],
                is_bigendian=0, step=fields["step"])
    msg.data = fields["data"]
    return msg


def main(topic: str, plan_name: str, rate: float, first_sec: int = 100, reliability: str = "reliable") -> int:
    from rclpy.qos import ReliabilityPolicy

    frames = plan(plan_name)
    compressed = any(kind == "jpeg" for _, kind, _ in frames)
    rclpy.init()
    node = rclpy.create_node("frame_publisher")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort"
                     else ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(CompressedImage if compressed else Image, topic, qos)
    deadline = time.monotonic() + (3 if reliability == "best_effort" else 30)  # an incompatible reader never matches
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    # We see the reader before it sees us: a volatile reliable reader drops what a writer it has not matched yet
    # sends, and the first frame of a phase went missing that way under load (make test, 2 cores). A camera
    # driver has long been running when a node subscribes; give the reader's side of discovery time too.
    time.sleep(0.5 if reliability == "best_effort" else 1.5)
    start_at = float(os.environ.get("PUBLISH_START_AT", "0"))  # several publishers starting together
    time.sleep(max(start_at - time.time(), 0.0))
    sent = []
    for index, (label, kind, fields) in enumerate(frames):
        pub.publish(frame_message(index, kind, fields, first_sec))
        sent.append({"index": index, "label": label, "sec": first_sec + index})
        time.sleep(1.0 / rate)
    if reliability != "best_effort":  # a reliable writer destroyed too early loses what it has not delivered
        from rclpy.duration import Duration

        pub.wait_for_all_acked(Duration(seconds=15))
    return finish(node, sent)


def finish(node, sent: list) -> int:
    """Let the last messages go out, print what was sent (one JSON line) and leave ROS."""
    time.sleep(0.5)
    print(json.dumps(sent))
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 100,
                  sys.argv[5] if len(sys.argv) > 5 else "reliable"))
