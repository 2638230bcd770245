"""The offline verbs' unit jobs: what a worker builds once and does per unit (picklable: Ray ships them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Optional

from robot_instseg.engine.frame_pipeline import FrameOutput
from robot_instseg.offline.frame_stage import SegmentedFrame, segment_all
from robot_instseg.offline.work_units import WorkUnit, unit_frames

if TYPE_CHECKING:
    from robot_instseg.engine.segmenter import Segmenter, SegmenterConfig


@dataclass(frozen=True)
class ModelSpec:
    """A model file and how to load it: what a worker needs to build the driver's Segmenter again. The file
    is read by path, so on a cluster it must be where the inputs are (shared storage, or the image)."""

    model: Optional[str]
    config: SegmenterConfig

    def load(self) -> Segmenter:
        from robot_instseg.engine.segmenter import load_segmenter

        return load_segmenter(self.model, self.config)


@dataclass(frozen=True)
class SegmentJob:
    """``run``'s stateless per-frame stage (``frame_stage.segment_one``) over a unit's frames."""

    model: ModelSpec
    depth: bool = False
    complete: bool = True
    keep_pixels: bool = True  # False: the input image is not written, so it is not shipped back either
    keep_labels: bool = True  # False: no label image is written (COCO results)

    def setup(self) -> Any:
        return self.model.load()

    def process(self, state: Any, unit: WorkUnit) -> Iterator[SegmentedFrame]:
        for done in segment_all(state, unit_frames(unit), self.depth, self.complete):
            if not self.keep_pixels:
                done.frame.rgb = None
                if done.frame.raw is not None:
                    done.frame.raw = {**done.frame.raw, "data": b""}
            if done.output is not None:
                _strip_for_shipping(done.output, self.keep_labels)
            yield done


def _strip_for_shipping(output: FrameOutput, keep_labels: bool) -> None:
    """Drop what only the stateless stage needed before a worker ships a frame back: the mask logits (they
    decide overlap ownership, which is done) and, when nothing writes it, the label image."""
    for detections in (output.visible, output.result.detections, output.result.weak):
        if detections is not None:
            detections.mask_logits = []
    if not keep_labels:
        output.labels = output.labels[:0, :0]
