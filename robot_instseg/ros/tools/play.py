"""Publish frames as a camera would (``robot-instseg play``): fixed rate, fresh stamps.

Frames from robot_instseg.io.frame_sources are encoded as Image (rgb8 / bgr8 / mono8) or as
CompressedImage (JPEG); a bag's messages are republished as recorded, with a new stamp.
Publishing needs no spinning, so the loop is a plain timed loop that stops by itself.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional

import cv2
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from robot_instseg.geometry.intrinsics import Intrinsics
from robot_instseg.io.frame_sources import Frame
from robot_instseg.io.image_encodings import encode_raw
from robot_instseg.ros.compat import use_camera_writer_profile
from robot_instseg.synthetic.depth import depth_png


@dataclass
class PlayOptions:
    """How frames are published: topic, rate, encoding, QoS reliability, and when to stop."""

    topic: str = "/camera/image_raw"
    rate_hz: float = 15.0
    encoding: str = "rgb8"
    compressed: bool = False
    jpeg_quality: int = 90
    frame_id: str = "camera"
    reliability: str = "reliable"
    duration_s: float = 60.0  # stops after this long whatever the source
    max_frames: Optional[int] = None
    loop: bool = False
    # Frames that carry depth (synthetic scenes) also publish it, with the same stamp, as a registered
    # 16UC1 depth image and the colour camera's CameraInfo, here; None = do not publish depth.
    depth_topic: Optional[str] = None
    camera_info_topic: Optional[str] = None


def frame_message(frame: Frame, header: Header, options: PlayOptions):
    """The message for one frame: Image or CompressedImage, stamped with ``header``."""
    if frame.raw is not None:
        fields = dict(frame.raw)
        header.frame_id = fields.pop("frame_id", "") or header.frame_id
        if frame.raw_type.endswith("CompressedImage"):
            return CompressedImage(header=header, format=fields["format"], data=fields["data"])
        msg = Image(header=header, height=fields["height"], width=fields["width"], encoding=fields["encoding"],
                    is_bigendian=fields["is_bigendian"], step=fields["step"])
        msg.data = fields["data"]
        return msg
    if options.compressed:
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality])
        if not ok:
            raise ValueError(f"could not JPEG-encode {frame.name}")
        return CompressedImage(header=header, format="jpeg", data=jpeg.tobytes())
    h, w, step, data = encode_raw(frame.rgb, options.encoding)
    msg = Image(header=header, height=h, width=w, encoding=options.encoding, is_bigendian=0, step=step)
    msg.data = data
    return msg


def depth_message(depth_m, header: Header) -> Image:
    """16UC1 millimetres (0 = no reading), REP 118, stamped with ``header``."""
    mm = depth_png(depth_m)
    msg = Image(header=header, height=mm.shape[0], width=mm.shape[1], encoding="16UC1", is_bigendian=0,
                step=mm.shape[1] * 2)
    msg.data = mm.tobytes()
    return msg


def camera_info_message(k: Intrinsics, header: Header) -> CameraInfo:
    """A distortion-free CameraInfo for intrinsics ``k``."""
    info = CameraInfo(header=header, width=k.width, height=k.height, distortion_model="plumb_bob",
                      d=[0.0] * 5, k=k.k(), r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=[k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0])
    return info


class Player:
    """Publishes ``frames`` on ``options.topic`` at ``options.rate_hz`` until done or ``duration_s``."""

    def __init__(self, node: Node, options: PlayOptions, compressed_input: bool = False) -> None:
        self.node, self.options = node, options
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE if options.reliability == "reliable"
                         else ReliabilityPolicy.BEST_EFFORT)
        kind = CompressedImage if (options.compressed or compressed_input) else Image
        self.publisher = node.create_publisher(kind, options.topic, qos)
        self.depth_publisher = node.create_publisher(Image, options.depth_topic, qos) if options.depth_topic else None
        self.info_publisher = (node.create_publisher(CameraInfo, options.camera_info_topic, qos)
                               if options.camera_info_topic else None)
        self.published = 0

    def play(self, frames: Iterable[Frame], on_publish: Optional[Callable[[object], None]] = None,
             should_stop: Callable[[], bool] = lambda: False) -> int:
        opts = self.options
        frames = list(frames) if opts.loop else frames
        stream: Iterator[Frame] = itertools.cycle(frames) if opts.loop else iter(frames)
        period = 1.0 / opts.rate_hz if opts.rate_hz > 0 else 0.0
        start = time.monotonic()
        next_at = start
        for frame in stream:
            if frame.error:  # an unreadable image in a folder: said, never published
                self.node.get_logger().warning(f"skipped {frame.error}")
                continue
            now = time.monotonic()
            if now - start >= opts.duration_s or should_stop():
                break
            if opts.max_frames is not None and self.published >= opts.max_frames:
                break
            if next_at > now:
                time.sleep(next_at - now)
            header = Header(stamp=self.node.get_clock().now().to_msg(), frame_id=opts.frame_id)
            msg = frame_message(frame, header, opts)
            if frame.depth is not None and frame.intrinsics is not None and self.depth_publisher is not None:
                # depth and CameraInfo first: the node pairs by stamp and finds them already there
                if self.info_publisher is not None:
                    self.info_publisher.publish(camera_info_message(frame.intrinsics, header))
                self.depth_publisher.publish(depth_message(frame.depth, header))
            self.publisher.publish(msg)
            self.published += 1
            if on_publish:
                on_publish(msg)
            next_at += period
            if next_at < time.monotonic() - period:  # fell behind (slow source): do not burst
                next_at = time.monotonic()
        return self.published


def wait_for_subscribers(node: Node, publisher, timeout_s: float = 10.0) -> bool:
    """Block until someone subscribes (discovery), so the first frames are not lost."""
    deadline = time.monotonic() + timeout_s
    while publisher.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def play_together(players: list[Player], frames: list[Frame], synchronised: bool = False) -> list[int]:
    """Each player publishes from its own thread (a camera driver each); frames sent per player. Free-running
    cameras (the default) share a rate with their phases spread over one period, as unsynchronised drivers do;
    ``synchronised`` ones (hardware-triggered) publish at the same moments. Camera i starts at frame i."""
    import threading

    sent = [0] * len(players)

    def play(index: int) -> None:
        rate = players[index].options.rate_hz
        if not synchronised and rate > 0:
            time.sleep(index / (rate * len(players)))
        shift = index % len(frames) if frames else 0
        sent[index] = players[index].play(frames[shift:] + frames[:shift])

    threads = [threading.Thread(target=play, args=(i,), daemon=True) for i in range(len(players))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


def camera_names(count: int) -> list[str]:
    """The cameras of ``--cameras N``: cam0, cam1, ... (one camera: [""], the node's own topic names)."""
    return [f"cam{i}" for i in range(count)] if count > 1 else [""]


def cameras_override(names: list[str]) -> dict[str, str]:
    """The seg_node ``-p`` override that declares ``names`` (none for the single camera)."""
    return {"cameras": "[" + ", ".join(names) + "]"} if any(names) else {}


def camera_options(options: PlayOptions, camera: str) -> PlayOptions:
    """``options`` for one of several cameras: ``{camera}`` in each topic and the frame_id replaced by its name."""
    import dataclasses

    def fill(topic: Optional[str]) -> Optional[str]:
        return topic.replace("{camera}", camera) if topic else topic

    return dataclasses.replace(options, topic=fill(options.topic) or options.topic, depth_topic=fill(options.depth_topic),
                               camera_info_topic=fill(options.camera_info_topic),
                               frame_id=options.frame_id.replace("{camera}", camera))


def run_play(frames: Iterable[Frame], options: PlayOptions, wait_s: float = 5.0, cameras: int = 1) -> int:
    """``robot-instseg play``: a node of its own, publish, tear down; returns frames sent. With ``cameras`` > 1,
    cameras cam0, cam1, ... each publish the frames (from its own thread, phases spread) on ``options``' topics
    with ``{camera}`` filled in."""
    use_camera_writer_profile()
    rclpy.init()
    node = Node("robot_instseg_play")
    players: list[Player] = []
    try:
        names = camera_names(cameras)
        players = [Player(node, camera_options(options, name) if name else options) for name in names]
        for player in players:
            if wait_s > 0 and not wait_for_subscribers(node, player.publisher, wait_s):
                node.get_logger().warning(f"no subscriber on {player.options.topic} after {wait_s:g} s; "
                                          "publishing anyway")
        if len(players) == 1:
            return players[0].play(frames)
        return sum(play_together(players, list(frames)))
    except KeyboardInterrupt:
        return sum(player.published for player in players)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
