"""Images in and out: camera buffer encodings, frame sources (folder, video, bag, scenes) and the
overlay. rclpy-free, shared by the node and the offline tools."""

from robot_instseg._exports import public_api

__all__, __getattr__ = public_api(__name__, """
    image_encodings: decode_raw decode_compressed encode_raw DEFAULT_MAX_INPUT_PIXELS
    frame_sources:   Frame read_rgb open_source open_bag
    overlay:         draw
""")
