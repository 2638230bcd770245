"""Segmenter = preprocess -> backend -> decoder -> Detections, with per-stage timing.

The node, the CLI and the offline tools all use this one class, so a bag processed offline
gives the same masks as the live node.
"""

from __future__ import annotations

import ast
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional, Sequence, Union

import numpy as np

from robot_instseg.engine.backends import BackendConfig, create_backend
from robot_instseg.engine.class_names import resolve_class_names
from robot_instseg.engine.decoders import select_decoder
from robot_instseg.engine.errors import ModelError
from robot_instseg.engine.ownership import Ownership
from robot_instseg.engine.postprocess import PostprocessSettings
from robot_instseg.engine.preprocess import LetterboxTransform, PreprocessConfig, preprocess, stride_aligned
from robot_instseg.engine.types import Detections
from robot_instseg.jit import warm_up

if TYPE_CHECKING:
    from robot_instseg.engine.device.pipeline import DeviceFrame, DevicePipeline

LOG = logging.getLogger(__name__)

_THRESHOLDS = PostprocessSettings()  # the one home of the threshold defaults
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# host: numpy / OpenCV around the runtime; device: engine.device (torch) on the runtime's device;
# auto: device when the backend runs on CUDA and torch sees that GPU, else host.
PIPELINES = ("auto", "host", "device")
# Decoders whose every output carries the batch axis first (Mask R-CNN's [N, 4] boxes do not).
BATCH_DECODERS = ("yolo_seg", "yolo_seg_e2e", "detr_seg")


@dataclass(frozen=True)
class SegmenterConfig:
    """Everything that decides how a model is loaded and its output read."""

    model_format: str = "auto"
    class_names: tuple[str, ...] = ()
    labels_path: Optional[str] = None
    runtime: BackendConfig = BackendConfig()  # backend, providers, device, fp16, cache, threads
    input_size: Optional[tuple[int, int]] = None  # for dynamic-size models; stride-aligned
    letterbox: Optional[bool] = None  # None = what the model family expects
    score_threshold: float = _THRESHOLDS.score_threshold
    iou_threshold: float = _THRESHOLDS.iou_threshold
    mask_threshold: float = _THRESHOLDS.mask_threshold
    max_detections: int = _THRESHOLDS.max_detections
    class_filter: tuple[Union[int, str], ...] = ()  # names or ids; empty = all
    pipeline: str = "auto"  # one of PIPELINES
    # Also decode the detections scoring from this up to score_threshold, apart (SegmentResult.weak): a
    # tracker's weak evidence (ByteTrack), never published. None, or not below score_threshold: off.
    weak_score_threshold: Optional[float] = None


@dataclass
class StageTimes:
    """Milliseconds spent in each stage of one call."""

    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms


@dataclass
class SegmentResult:
    """Detections of one call, with the time spent in each stage.

    The device pipeline resolves overlaps where the masks are, so it also fills ``ownership``
    and ``visible``; the host pipeline leaves them None (``segment_frame`` resolves them).
    ``weak`` holds the detections under ``score_threshold`` that ``weak_score_threshold`` asked for
    (raw masks, in no overlap contest, never published); None when it is off.
    """

    detections: Detections
    times: StageTimes = field(default_factory=StageTimes)
    ownership: Optional[Ownership] = None
    visible: Optional[Detections] = None
    transfer_bytes: tuple[int, int] = (0, 0)  # host -> device, device -> host, this frame
    weak: Optional[Detections] = None
    batch_size: int = 1  # frames in the session.run this frame shared (its inference_ms is its share)


class Segmenter:
    """A loaded, warmed-up model: call ``segment(image)`` for Detections and timings."""

    def __init__(self, model_path: Union[str, Path], config: SegmenterConfig = SegmenterConfig()) -> None:
        self.model_path = Path(model_path)
        self.config = config
        self.backend = create_backend(self.model_path, config.runtime)
        if len(self.backend.inputs) != 1:
            raise ModelError(f"{self.model_path} has {len(self.backend.inputs)} inputs; one image input expected")
        self.input = self.backend.inputs[0]
        if len(self.input.shape) not in (3, 4) or self.input.shape[-3] not in (3, None):
            raise ModelError(f"{self.model_path}: input {self.input.name} {list(self.input.shape)} "
                             "is not a 3-channel image")
        self.metadata = dict(self.backend.metadata)
        self.decoder = select_decoder(self.backend.outputs, self.metadata, config.model_format)
        self.class_names, self.class_names_source = resolve_class_names(
            self.model_path, self.metadata, config.class_names, config.labels_path)
        self.preprocess_config = self._preprocess_config()
        self.settings, self.weak_below = self._settings(config)
        self._input_rank = len(self.input.shape)
        self._buffer: Optional[np.ndarray] = None  # reused input tensor (one caller at a time)
        self._input_dtype = np.float16 if self.input.dtype == "float16" else np.float32
        in_h, in_w = self.preprocess_config.size
        self.backend.warmup(self._feed(np.zeros((1, 3, in_h, in_w), np.float32)))
        warm_up()  # the host kernels (decode, ownership, and the 3D when the caller imported it)
        self.runtime_on_cuda = self.backend.device == "cuda"
        self.device_pipeline: Optional[DevicePipeline] = self._device_pipeline()
        LOG.info("loaded %s: decoder %s, input %s, %d classes (%s), %s, %s pipeline", self.model_path,
                 self.decoder.name, self.preprocess_config.size, len(self.class_names), self.class_names_source,
                 self.backend.description, self.pipeline_device)

    # -- configuration ------------------------------------------------------------------
    def _preprocess_config(self) -> PreprocessConfig:
        static = self.input.shape[-2:]
        if None in static:
            stride = int(self.metadata.get("stride", 32) or 32)
            wanted = self.config.input_size or _metadata_imgsz(self.metadata) or (640, 640)
            size = stride_aligned((int(wanted[0]), int(wanted[1])), stride)
        else:
            size = (int(static[0] or 0), int(static[1] or 0))  # both known: None was ruled out above
            if self.config.input_size and tuple(self.config.input_size) != size:
                LOG.warning("input_size %s ignored: %s has a fixed input of %s", self.config.input_size,
                            self.model_path.name, size)
        family = self.decoder.name
        letterbox = self.config.letterbox if self.config.letterbox is not None else family.startswith("yolo")
        if family == "detr_seg":
            return PreprocessConfig(size=size, letterbox=letterbox, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        return PreprocessConfig(size=size, letterbox=letterbox)

    def _device_pipeline(self) -> Optional[DevicePipeline]:
        """The device pipeline the config asks for, None for the host one (see PIPELINES)."""
        choice = self.config.pipeline
        if choice not in PIPELINES:
            raise ModelError(f"unknown pipeline {choice!r}; choose one of {PIPELINES}")
        on_cuda = self.runtime_on_cuda
        if choice == "host" or (choice == "auto" and not on_cuda):
            return None
        why_not = _device_unavailable(on_cuda, self.decoder.name)
        if why_not:
            if choice == "device":
                raise ModelError(f"pipeline 'device' is not possible here: {why_not}")
            LOG.warning("host pipeline: %s", why_not)
            return None
        import torch

        from robot_instseg.engine.device.pipeline import DevicePipeline

        device = torch.device("cuda", self.config.runtime.device_id) if on_cuda else torch.device("cpu")
        pipeline = DevicePipeline(self.backend, self.decoder, self.preprocess_config, device,  # type: ignore[arg-type]
                                  self._input_rank)
        pipeline.warmup()
        return pipeline

    @property
    def pipeline_device(self) -> str:
        """Where the stages around the runtime run: "host" (numpy) or the torch device ("cuda:0", "cpu")."""
        return "host" if self.device_pipeline is None else str(self.device_pipeline.device)

    def stage_placement(self) -> dict[str, str]:
        """Where each stage runs, for ``bench --device``."""
        runtime = f"{self.backend.device}: {self.backend.description}"
        if self.device_pipeline is None:
            return {"preprocess": "host (numpy, OpenCV)", "inference": f"{runtime}, session.run on host arrays",
                    "postprocess": "host (numpy, OpenCV NMS)"}
        where = str(self.device_pipeline.device)
        return {"preprocess": f"{where} (torch; uint8 upload)", "inference": f"{runtime}, bound to {where} tensors",
                "postprocess": f"{where} (torch: selection, masks, ownership); NMS on host"}

    def _settings(self, config: SegmenterConfig) -> tuple[PostprocessSettings, Optional[float]]:
        """(the decoder's settings, the score under which a decoded detection is weak, or None).

        With weak detections on, the decoder selects down to ``weak_score_threshold``. NMS is greedy by
        score and the detection cap keeps the best, so the detections at or above ``score_threshold``
        are exactly those a decode at that threshold gives."""
        weak = config.weak_score_threshold
        if weak is not None and not 0.0 <= weak <= 1.0:
            raise ValueError(f"weak_score_threshold must be in [0, 1], got {weak}")
        if weak is not None and weak < config.score_threshold:
            decode_from, weak_below = weak, config.score_threshold
        else:
            decode_from, weak_below = config.score_threshold, None
        settings = PostprocessSettings(score_threshold=decode_from,
                                       iou_threshold=config.iou_threshold, mask_threshold=config.mask_threshold,
                                       max_detections=config.max_detections,
                                       class_ids=self.class_ids_for(config.class_filter))
        return settings, weak_below

    def class_ids_for(self, selection: Iterable[Union[int, str]]) -> Optional[frozenset]:
        """Class names or ids -> ids; None for an empty selection (every class)."""
        ids = set()
        for item in selection:
            if isinstance(item, (int, np.integer)) or (isinstance(item, str) and item.strip().isdigit()):
                if self.class_names and not 0 <= int(item) < len(self.class_names):
                    raise ValueError(f"class id {int(item)} is not a class of this model (ids 0.."
                                     f"{len(self.class_names) - 1}: {self.class_names})")
                ids.add(int(item))
            elif item in self.class_names:
                ids.add(self.class_names.index(item))
            else:
                raise ValueError(f"class {item!r} is not a class of this model (classes: {self.class_names})")
        return frozenset(ids) if ids else None

    def update(self, **changes) -> None:
        """Change thresholds, max_detections or class_filter while running (validated first)."""
        config = dataclasses.replace(self.config, **changes)
        settings, weak_below = self._settings(config)  # raises before anything changes
        self.config, self.settings, self.weak_below = config, settings, weak_below

    # -- inference ----------------------------------------------------------------------
    def segment(self, image: np.ndarray, channel_order: str = "rgb") -> SegmentResult:
        """Segment one uint8 image (HxW, HxWx3 or HxWx4 in ``channel_order``)."""
        weak_below = self.weak_below
        if self.device_pipeline is not None:
            return self._device_result(self.device_pipeline.segment(image, channel_order, self.settings, weak_below))
        t0 = time.perf_counter()
        blob, transform = preprocess(image, self.preprocess_config, channel_order, out=self._buffer)
        self._buffer = blob
        feed = self._feed(blob)
        t1 = time.perf_counter()
        raw = self.backend.run(feed)
        t2 = time.perf_counter()
        detections, weak = self._decode(raw, transform, weak_below)
        t3 = time.perf_counter()
        return SegmentResult(detections, StageTimes((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3),
                             transfer_bytes=self._moved(feed, raw), weak=weak)

    def _decode(self, raw: dict[str, np.ndarray], transform: LetterboxTransform,
                weak_below: Optional[float]) -> tuple[Detections, Optional[Detections]]:
        """One frame's outputs -> (detections with class names, the weak ones apart or None)."""
        detections = self.decoder.decode(raw, transform, self.settings)
        detections.class_names = [self.name_of(int(c)) for c in detections.class_ids]
        return detections.split_at(weak_below) if weak_below is not None else (detections, None)

    def _moved(self, feed: dict[str, np.ndarray], raw: dict[str, np.ndarray], rows: int = 1) -> tuple[int, int]:
        """Bytes one frame's ``session.run`` copies up and down: on CUDA the feed and every output, else none."""
        if not self.runtime_on_cuda:
            return (0, 0)
        return (sum(a.nbytes for a in feed.values()) // rows, sum(a.nbytes for a in raw.values()) // rows)

    def _device_result(self, frame: DeviceFrame, batch_size: int = 1) -> SegmentResult:
        """A device pipeline frame as a SegmentResult, class names filled."""
        for detections in (frame.detections, frame.visible, frame.weak):
            if detections is not None:
                detections.class_names = [self.name_of(int(c)) for c in detections.class_ids]
        return SegmentResult(frame.detections, StageTimes(*frame.times), frame.ownership, frame.visible,
                             (frame.transfers.up, frame.transfers.down), frame.weak, batch_size)

    @property
    def batch_capacity(self) -> Optional[int]:
        """Frames one ``session.run`` takes: None for a dynamic batch axis (any number), else its fixed size
        (1 for a batch-1 model or one without a batch axis). The device pipeline batches a dynamic axis through
        onnxruntime's IO binding; on native TensorRT (an engine built for batch 1) it runs frames one by one."""
        if self._input_rank != 4 or self.decoder.name not in BATCH_DECODERS:
            return 1
        if self.device_pipeline is not None:
            return None if self.device_pipeline.batches else 1
        first = self.input.shape[0]
        return None if first is None else max(int(first), 1)

    def segment_batch(self, frames: Sequence[tuple[np.ndarray, str]], max_batch: int = 0) -> list[SegmentResult]:
        """Segment several (image, channel_order) frames, sizes free, in as few ``session.run`` calls as the
        model allows (``batch_capacity``; at most ``max_batch`` frames a call when it is > 0). Every frame is
        letterboxed on its own and decoded on its own, so each result equals ``segment`` of that frame: the
        rows of a batched run are the runs of its frames (tested bit for bit on the bundled model)."""
        capacity = self.batch_capacity
        step = capacity or len(frames) or 1
        if max_batch > 0:
            step = min(step, max_batch)
        if capacity == 1 or step <= 1 or len(frames) <= 1:
            return [self.segment(image, order) for image, order in frames]
        results: list[SegmentResult] = []
        for start in range(0, len(frames), step):
            results += self._segment_together(frames[start:start + step], capacity)
        return results

    def _segment_together(self, frames: Sequence[tuple[np.ndarray, str]], capacity: Optional[int]) -> list[SegmentResult]:
        """One session.run for ``frames``; a fixed batch larger than them is padded with zeros (rows dropped)."""
        weak_below = self.weak_below
        if self.device_pipeline is not None:
            return [self._device_result(frame, len(frames)) for frame in
                    self.device_pipeline.segment_batch(list(frames), self.settings, weak_below)]
        in_h, in_w = self.preprocess_config.size
        rows = capacity or len(frames)
        t0 = time.perf_counter()
        blob = np.zeros((rows, 3, in_h, in_w), np.float32)
        transforms = [preprocess(image, self.preprocess_config, order, out=blob[i:i + 1])[1]
                      for i, (image, order) in enumerate(frames)]
        feed = self._feed(blob)
        t1 = time.perf_counter()
        raw = self.backend.run(feed)
        t2 = time.perf_counter()
        n = len(frames)
        pre_ms, infer_ms = (t1 - t0) * 1e3 / n, (t2 - t1) * 1e3 / n
        results = []
        for i, transform in enumerate(transforms):
            t3 = time.perf_counter()
            detections, weak = self._decode({name: value[i:i + 1] for name, value in raw.items()}, transform,
                                            weak_below)
            post_ms = (time.perf_counter() - t3) * 1e3
            results.append(SegmentResult(detections, StageTimes(pre_ms, infer_ms, post_ms),
                                         transfer_bytes=self._moved(feed, raw, rows), weak=weak, batch_size=n))
        return results

    def infer(self, image: np.ndarray, channel_order: str = "rgb") -> tuple[dict[str, np.ndarray], LetterboxTransform]:
        """Preprocess and run the model, no decoding: (raw outputs, transform) for reference decodes."""
        blob, transform = preprocess(image, self.preprocess_config, channel_order, out=self._buffer)
        self._buffer = blob
        return self.backend.run(self._feed(blob)), transform

    def __call__(self, image: np.ndarray, channel_order: str = "rgb") -> Detections:
        return self.segment(image, channel_order).detections

    def name_of(self, class_id: int) -> str:
        return self.class_names[class_id] if 0 <= class_id < len(self.class_names) else str(class_id)

    def input_feed(self, image: np.ndarray, channel_order: str = "rgb") -> dict[str, np.ndarray]:
        """The exact feed ``segment`` would give the runtime, in a buffer of its own (for benchmarks)."""
        blob, _ = preprocess(image, self.preprocess_config, channel_order)
        return self._feed(blob)

    def _feed(self, blob: np.ndarray) -> dict[str, np.ndarray]:
        """A float32 NCHW tensor as the model takes it: its dtype, with or without the batch axis."""
        if self._input_dtype is not np.float32:
            blob = blob.astype(self._input_dtype)
        return {self.input.name: blob if self._input_rank == 4 else blob[0]}


def load_segmenter(model: Optional[Union[str, Path]] = None, config: SegmenterConfig = SegmenterConfig()) -> Segmenter:
    """A Segmenter for ``model``, or for the bundled default model when none is given."""
    from robot_instseg.engine.model_paths import default_model_path

    return Segmenter(Path(model) if model else default_model_path(), config)


def _device_unavailable(on_cuda: bool, decoder: str) -> str:
    """Why the device pipeline cannot run here, or "" when it can."""
    if not decoder.startswith("yolo"):
        return f"it decodes YOLO-seg outputs only, and this model's decoder is {decoder}"
    try:
        import torch
    except ImportError:
        return "it needs torch (pip install torch; on a Jetson, JetPack's torch wheel)"
    if on_cuda and not torch.cuda.is_available():
        return f"the runtime is on CUDA but this torch ({torch.__version__}) has no CUDA device"
    return ""


def _metadata_imgsz(metadata: dict[str, str]) -> Optional[tuple[int, int]]:
    text = metadata.get("imgsz")
    if not text:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (int(value[0]), int(value[1]))
    return None


__all__: Sequence[str] = ("Segmenter", "SegmenterConfig", "SegmentResult", "StageTimes", "load_segmenter", "PIPELINES")
