"""What a decoder is: it recognises a model's outputs and turns them into Detections."""

from __future__ import annotations

from typing import Optional

import numpy as np

from robot_instseg.engine.backends.base import TensorInfo
from robot_instseg.engine.postprocess import PostprocessSettings
from robot_instseg.engine.preprocess import LetterboxTransform
from robot_instseg.engine.types import Detections


class Decoder:
    """One output format. Subclasses set ``name`` and implement ``match`` and ``decode``."""

    name = ""

    @classmethod
    def match(cls, outputs: list[TensorInfo], metadata: dict[str, str]) -> Optional["Decoder"]:
        """A decoder bound to these outputs, or None when the outputs are not this format."""
        raise NotImplementedError

    def decode(self, raw: dict[str, np.ndarray], transform: LetterboxTransform,
               settings: PostprocessSettings) -> Detections:
        """Model outputs -> Detections in original-image pixels (class names filled later)."""
        raise NotImplementedError


def describe_outputs(outputs: list[TensorInfo]) -> str:
    return ", ".join(f"{o.name} {list(o.shape)} {o.dtype}" for o in outputs)


def rank(info: TensorInfo) -> int:
    return len(info.shape)
