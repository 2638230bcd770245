"""Frames to play as a camera would: a folder of images, a video file, a bag, or synthetic scenes.

rclpy-free. Each source yields ``Frame``s: decoded RGB pixels (images, video, scenes), or a
bag's image message fields unchanged (encoding, step, data...), so a recording replays
byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np

from robot_instseg.engine.errors import InputError
from robot_instseg.geometry.intrinsics import Intrinsics
from robot_instseg.io.depth_frames import CameraFields, DepthFields
from robot_instseg.io.image_encodings import decode_fields

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")
BAG_SUFFIXES = (".mcap", ".db3")
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


@dataclass
class Frame:
    """One frame from a source: decoded pixels, or a bag's raw message fields to decode later."""

    rgb: Optional[np.ndarray] = None  # decoded frame (images, video, scenes)
    raw: Optional[dict] = None  # a bag message's fields: Image or CompressedImage, as recorded
    raw_type: str = ""  # "sensor_msgs/msg/Image" or ".../CompressedImage" when ``raw``
    name: str = ""
    stamp: Optional[tuple[int, int]] = None  # bag frames: header stamp (sec, nanosec)
    timestamp_ns: Optional[int] = None  # bag frames: the bag's receive time
    error: str = ""  # why this frame could not be read: consumers skip it and name it
    topic: str = ""  # bag frames: the topic they were recorded on
    depth: Optional[np.ndarray] = None  # float32 metres registered to rgb, NaN = no reading (synthetic scenes)
    intrinsics: Optional[Intrinsics] = None  # the colour camera's, when depth is given
    depth_fields: Optional[DepthFields] = None  # bag frames: the depth Image paired by stamp, undecoded
    camera: Optional[CameraFields] = None  # bag frames: the CameraInfo with the frame's stamp, else the last one


def read_rgb(path: Path) -> Optional[np.ndarray]:
    """An image file as uint8 RGB, or None when it cannot be read (the one image reader)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def is_bag(path: Path) -> bool:
    """True for a rosbag2 folder or a single .mcap / .db3 file."""
    path = Path(path)
    return path.suffix in BAG_SUFFIXES or (path.is_dir() and (path / "metadata.yaml").is_file())


def image_folder(folder: Path) -> Iterator[Frame]:
    """Every image under ``folder``; an empty folder is refused now, not when first read."""
    paths = list_images(folder)
    if not paths:
        raise ValueError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return _read_images(paths)


def _read_images(paths: list[Path]) -> Iterator[Frame]:
    for path in paths:
        rgb = read_rgb(path)
        yield Frame(rgb=rgb, name=path.name) if rgb is not None else \
            Frame(name=path.name, error=f"{path}: not a readable image")


def video(path: Path, start: int = 0, stop: Optional[int] = None) -> Iterator[Frame]:
    """The frames of a video file, decoded with OpenCV; ``start`` / ``stop``: only frames [start, stop) by
    index (those before ``start`` are decoded and dropped, since seeking is not frame-exact in every codec)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"{path}: not a video OpenCV can open")
    return _video_frames(capture, path, start, stop)


def _video_frames(capture, path: Path, start: int, stop: Optional[int]) -> Iterator[Frame]:
    index = 0
    try:
        while stop is None or index < stop:
            if index < start:
                if not capture.grab():
                    break
            else:
                ok, bgr = capture.read()
                if not ok:
                    break
                yield Frame(rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), name=f"{path.name}#{index}")
            index += 1
    finally:
        capture.release()


def scenes(seed: int = 0, count: int = 8, height: int = 480, width: int = 640, depth: bool = False) -> Iterator[Frame]:
    """``count`` synthetic tabletop scenes (generated once, about 0.3 s each); with ``depth``, each with the
    depth an RGB-D camera would report (artefacts included) and the camera's intrinsics."""
    from robot_instseg.synthetic.scenes import generate_scene, scene_seed

    for index in range(count):
        scene = generate_scene(scene_seed(seed, index), height, width)
        yield _synthetic_frame(scene, f"scene{index}", depth)


def _synthetic_frame(scene, name: str, depth: bool) -> Frame:
    """A rendered scene as a Frame; with ``depth``, the depth an RGB-D camera would report (artefacts included)
    and the camera's intrinsics."""
    from robot_instseg.synthetic.depth import render_depth, sensor_depth

    frame = Frame(rgb=scene.render_rgb(), name=name)
    if depth:
        truth = render_depth(scene)
        frame.depth, frame.intrinsics = sensor_depth(truth, scene.seed), truth.intrinsics
    return frame


def clip(seed: int = 0, count: int = 60, height: int = 480, width: int = 640, depth: bool = False,
         style: str = "default") -> Iterator[Frame]:
    """``count`` frames of one synthetic clip (``scenes --sequence``: objects that move, pass behind each other,
    leave and return), so a tracker has objects to follow; ``depth`` as for ``scenes``."""
    from robot_instseg.synthetic.sequences import generate_clip

    for index, step in enumerate(generate_clip(seed, count, height=height, width=width, dropped=0.0, style=style)):
        yield _synthetic_frame(step.scene, f"clip{seed}_{index}", depth)


def message_fields(msg, msgtype: str) -> dict:
    """The fields of a deserialized (rosbags) Image or CompressedImage that decoding needs."""
    if msgtype.endswith("CompressedImage"):
        fields = {"format": msg.format, "data": bytes(msg.data)}
    else:
        fields = {"encoding": msg.encoding, "height": msg.height, "width": msg.width, "step": msg.step,
                  "is_bigendian": msg.is_bigendian, "data": bytes(msg.data)}
    fields["frame_id"] = msg.header.frame_id
    return fields


def open_bag(path: Path):
    """An open rosbags AnyReader, or ValueError naming the bag and what is wrong with it."""
    from rosbags.highlevel import AnyReader

    reader = AnyReader([Path(path)])
    try:
        reader.open()
    except Exception as exc:  # rosbags raises several types for damaged files
        raise ValueError(f"{path}: not a readable bag ({exc}); if its writer died, try "
                         f"'robot-instseg bag repair {path}'") from None
    return reader


def bag(path: Path, topic: Optional[str] = None, depth_topic: Optional[str] = None,
        camera_info_topic: Optional[str] = None, max_skew_ns: int = 20_000_000) -> Iterator[Frame]:
    """Image or CompressedImage messages of one topic of a bag (rosbags; no ROS install needed).

    With ``depth_topic``, each frame carries the depth Image with its stamp (else the nearest within
    ``max_skew_ns``) and the CameraInfo of ``camera_info_topic`` (default: the one beside the depth
    topic's camera, found as the only CameraInfo topic), as the node pairs them live.
    The bag is opened and its topics chosen now, so a damaged bag is refused before any output."""
    reader = open_bag(path)
    if depth_topic is not None:
        return _bag_with_depth(reader, path, topic, depth_topic, camera_info_topic, max_skew_ns)
    connections = [c for c in reader.connections if c.msgtype in IMAGE_TYPES and (topic is None or c.topic == topic)]
    if not connections:
        found = sorted({f"{c.topic} ({c.msgtype})" for c in reader.connections})
        reader.close()
        raise ValueError(f"{path}: no image topic{f' {topic}' if topic else ''} (topics: {', '.join(found)})")
    return _bag_frames(reader, [c for c in connections if c.topic == connections[0].topic])


def bag_window(path: Path, topic: str, start: Optional[int], stop: Optional[int]) -> Iterator[Frame]:
    """The frames of ``topic`` whose receive time is in [start, stop) ns (None: open end), in bag order:
    one piece of ``bag(path, topic)`` (no depth), for workers that each read their own window."""
    reader = open_bag(path)
    return _bag_frames(reader, [c for c in reader.connections if c.topic == topic], start, stop)


def _bag_frames(reader, connections, start: Optional[int] = None, stop: Optional[int] = None) -> Iterator[Frame]:
    try:
        chosen = connections[0].topic
        for connection, timestamp, data in reader.messages(connections=connections, start=start, stop=stop):
            msg = reader.deserialize(data, connection.msgtype)
            fields = message_fields(msg, connection.msgtype)
            yield Frame(raw=fields, raw_type=connection.msgtype, name=f"{chosen}", topic=chosen,
                        stamp=(int(msg.header.stamp.sec), int(msg.header.stamp.nanosec)), timestamp_ns=timestamp)
    finally:
        reader.close()


CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
DEPTH_LOOKAHEAD = 10  # colour frames held back while their depth may still come later in the bag


def _topic_of(reader, path: Path, msgtypes: tuple, wanted: Optional[str], what: str) -> str:
    topics = sorted({c.topic for c in reader.connections if c.msgtype in msgtypes})
    if wanted is not None:
        if wanted not in topics:
            reader.close()
            raise ValueError(f"{path}: no {what} topic {wanted} (candidates: {', '.join(topics) or 'none'})")
        return wanted
    if len(topics) != 1:
        reader.close()
        raise ValueError(f"{path}: {len(topics)} {what} topics ({', '.join(topics) or 'none'}); name one")
    return topics[0]


def _bag_with_depth(reader, path: Path, topic: Optional[str], depth_topic: str, info_topic: Optional[str],
                    max_skew_ns: int) -> Iterator[Frame]:
    depth_topic = _topic_of(reader, path, ("sensor_msgs/msg/Image",), depth_topic, "depth")
    image_topics = [c.topic for c in reader.connections if c.msgtype in IMAGE_TYPES and c.topic != depth_topic
                    and (topic is None or c.topic == topic)]
    if not image_topics:
        reader.close()
        raise ValueError(f"{path}: no image topic{f' {topic}' if topic else ''} besides the depth topic")
    info_topic = _topic_of(reader, path, (CAMERA_INFO_TYPE,), info_topic, "CameraInfo")
    return _merge_depth(reader, image_topics[0], depth_topic, info_topic, max_skew_ns)


def _merge_depth(reader, image_topic: str, depth_topic: str, info_topic: str, max_skew_ns: int) -> Iterator[Frame]:
    """Frames of ``image_topic`` in bag order, each with its depth and CameraInfo attached when the bag has them."""
    wanted = {image_topic, depth_topic, info_topic}
    pending: list[Frame] = []
    depths: dict[int, DepthFields] = {}
    infos: dict[int, CameraFields] = {}
    last_info: list[Optional[CameraFields]] = [None]

    def stamp_of(msg) -> int:
        return int(msg.header.stamp.sec) * 10**9 + int(msg.header.stamp.nanosec)

    def attach(frame: Frame) -> Frame:
        sec, nanosec = frame.stamp or (0, 0)
        stamp = sec * 10**9 + nanosec
        near = [s for s in depths if abs(s - stamp) <= max_skew_ns]
        if near:
            frame.depth_fields = depths[min(near, key=lambda s: abs(s - stamp))]
        frame.camera = infos.get(stamp, last_info[0])
        return frame

    try:
        connections = [c for c in reader.connections if c.topic in wanted]
        for connection, timestamp, data in reader.messages(connections=connections):
            msg = reader.deserialize(data, connection.msgtype)
            if connection.topic == info_topic:
                last_info[0] = infos[stamp_of(msg)] = CameraFields(int(msg.width), int(msg.height),
                                                                   [float(v) for v in msg.k])
            elif connection.topic == depth_topic:
                depths[stamp_of(msg)] = DepthFields(msg.encoding, int(msg.height), int(msg.width), int(msg.step),
                                                    bytes(msg.data), bool(msg.is_bigendian))
            else:
                pending.append(Frame(raw=message_fields(msg, connection.msgtype), raw_type=connection.msgtype,
                                     name=image_topic, topic=image_topic, timestamp_ns=timestamp,
                                     stamp=(int(msg.header.stamp.sec), int(msg.header.stamp.nanosec))))
            newest_depth = max(depths, default=-1)
            while pending and (len(pending) > DEPTH_LOOKAHEAD or newest_depth > _ns(pending[0]) + max_skew_ns):
                frame = attach(pending.pop(0))
                done_upto = _ns(frame) - max_skew_ns  # later frames have later stamps: older depth is useless
                for table in (depths, infos):
                    for old in [s for s in table if s < done_upto]:
                        del table[old]
                yield frame
        while pending:
            yield attach(pending.pop(0))
    finally:
        reader.close()


def _ns(frame: Frame) -> int:
    sec, nanosec = frame.stamp or (0, 0)
    return sec * 10**9 + nanosec


def frame_count(source: str, bag_topic: Optional[str] = None) -> Optional[int]:
    """How many frames ``source`` holds, when that is cheap to know (for progress bars)."""
    path = Path(source)
    try:
        if is_bag(path):
            from rosbags.highlevel import AnyReader

            with AnyReader([path]) as reader:
                counts = [c.msgcount for c in reader.connections
                          if c.msgtype in IMAGE_TYPES and (bag_topic is None or c.topic == bag_topic)]
                return counts[0] if counts else None
        if path.is_dir():
            return len(list_images(path))
        if path.suffix.lower() in VIDEO_SUFFIXES:
            capture = cv2.VideoCapture(str(path))
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            capture.release()
            return count if count > 0 else None
    except Exception:  # only a progress-bar hint
        return None
    return 1 if path.is_file() else None


def open_source(source: str, bag_topic: Optional[str] = None, scene_count: int = 8,
                scene_depth: bool = False, depth_topic: Optional[str] = None,
                camera_info_topic: Optional[str] = None) -> Iterator[Frame]:
    """``scenes`` or ``scenes:SEED`` (``scene_depth``: with depth), a folder of images, a video file, or a bag
    (``depth_topic``: with its depth and CameraInfo)."""
    if source == "scenes" or source.startswith("scenes:"):
        seed = int(source.split(":", 1)[1]) if ":" in source else 0
        return scenes(seed, scene_count, depth=scene_depth)
    path = Path(source)
    if not path.exists():
        raise ValueError(f"{source}: no such file or folder (or use 'scenes[:SEED]')")
    if is_bag(path):
        return bag(path, bag_topic, depth_topic, camera_info_topic)
    if depth_topic is not None:
        raise ValueError(f"{source}: --depth-topic needs a bag input")
    if path.is_dir():
        return image_folder(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return video(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        rgb = read_rgb(path)
        if rgb is None:
            raise ValueError(f"{path}: not a readable image")
        return iter([Frame(rgb=rgb, name=path.name)])
    raise ValueError(f"{source}: not a folder, video ({', '.join(VIDEO_SUFFIXES)}), bag or image")


def frame_image(frame: Frame) -> tuple[np.ndarray, str]:
    """(image, channel order) of a Frame: its pixels, or its bag message decoded.
    InputError for a frame its source could not read (named in ``frame.error``)."""
    if frame.error:
        raise InputError(frame.error, "unreadable")
    if frame.raw is not None:
        return decode_fields(frame.raw_type, frame.raw)
    if frame.rgb is None:
        raise InputError(f"frame {frame.name} carries no image", "unreadable")
    return frame.rgb, "rgb"


def frame_depth(frame: Frame, image_shape: tuple[int, int]) -> tuple[np.ndarray, Intrinsics]:
    """(depth in metres, intrinsics) of a frame at ``image_shape``; InputError (no_depth, no_camera_info,
    or what registered_depth refuses) when it has none that can be used."""
    from robot_instseg.geometry.depth_image import registered_to
    from robot_instseg.io.depth_frames import registered_depth

    if frame.depth is not None and frame.intrinsics is not None:
        height, width = image_shape
        return registered_to(frame.depth, height, width), frame.intrinsics.scaled_to(width, height)
    if frame.depth_fields is None:
        raise InputError(f"{frame.name}: no depth frame with this stamp", "no_depth")
    if frame.camera is None:
        raise InputError(f"{frame.name}: no CameraInfo before this frame", "no_camera_info")
    return registered_depth(frame.depth_fields, frame.camera, image_shape)
