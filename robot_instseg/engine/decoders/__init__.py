"""Output decoders, one per export format, chosen from the model's outputs and metadata."""

from __future__ import annotations

from robot_instseg.engine.backends.base import TensorInfo
from robot_instseg.engine.decoders.base import Decoder, describe_outputs
from robot_instseg.engine.decoders.detr_seg import DetrSegDecoder
from robot_instseg.engine.decoders.maskrcnn import MaskRCNNDecoder
from robot_instseg.engine.decoders.yolo_seg import YoloSegDecoder, YoloSegEndToEndDecoder
from robot_instseg.engine.errors import ModelError

DECODERS: dict[str, type[Decoder]] = {d.name: d for d in (YoloSegEndToEndDecoder, YoloSegDecoder,
                                                           DetrSegDecoder, MaskRCNNDecoder)}


def select_decoder(outputs: list[TensorInfo], metadata: dict[str, str], model_format: str = "auto") -> Decoder:
    """The decoder for these outputs: the one named by ``model_format``, or the first that matches."""
    if model_format != "auto":
        if model_format not in DECODERS:
            raise ModelError(f"unknown model_format {model_format!r}; choose auto or one of {sorted(DECODERS)}")
        decoder = DECODERS[model_format].match(outputs, metadata)
        if decoder is None:
            raise ModelError(f"model_format {model_format!r} does not fit the model's outputs: "
                             f"{describe_outputs(outputs)}")
        return decoder
    for cls in DECODERS.values():
        decoder = cls.match(outputs, metadata)
        if decoder is not None:
            return decoder
    raise ModelError(f"no decoder understands the model's outputs: {describe_outputs(outputs)}. Supported: "
                     "yolo_seg ([1,4+nc+nm,N] + [1,nm,h,w]), yolo_seg_e2e ([1,K,6+nm] + [1,nm,h,w]), "
                     "detr_seg ([1,Q,4] + [1,Q,C] + [1,Q,h,w]), maskrcnn ([N,4] + [N] int + [N] + [N,1,H,W])")


__all__ = ["DECODERS", "Decoder", "select_decoder"]
