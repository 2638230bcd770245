"""Image in, Detections out: preprocessing, runtimes and output decoders. No ROS here."""

from robot_instseg.engine.errors import EngineError, InputError, ModelError
from robot_instseg.engine.types import Detections

__all__ = ["Detections", "EngineError", "InputError", "ModelError", "Segmenter", "SegmenterConfig"]


def __getattr__(name: str):
    # Segmenter pulls in onnxruntime; import it only when asked for.
    if name in ("Segmenter", "SegmenterConfig"):
        from robot_instseg.engine import segmenter

        return getattr(segmenter, name)
    raise AttributeError(name)
