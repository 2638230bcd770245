"""The offline verbs' unit jobs: what a worker builds once and does per unit (picklable: Ray ships them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Optional

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

    def setup(self) -> Any:
        return self.model.load()

    def process(self, state: Any, unit: WorkUnit) -> Iterator[SegmentedFrame]:
        return segment_all(state, unit_frames(unit), self.depth, self.complete)
