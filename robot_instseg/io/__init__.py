"""Images in and out: camera buffer encodings, frame sources (folder, video, bag, scenes) and the
overlay. rclpy-free, shared by the node and the offline tools."""

from robot_instseg._exports import exports, lazy_exports

_HOMES = exports(
    image_encodings="decode_raw decode_compressed encode_raw DEFAULT_MAX_INPUT_PIXELS",
    frame_sources="Frame read_rgb open_source open_bag",
    overlay="draw",
)
__all__ = sorted(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
