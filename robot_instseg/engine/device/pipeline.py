"""The device pipeline: one uint8 upload, letterbox, inference, YOLO selection, mask decode and
ownership on the device; only boxes, scores, classes and mask bits come back.

Chosen by the Segmenter when its backend runs on CUDA (``pipeline: auto``), or asked for with
``pipeline: device`` (on a machine without CUDA it runs on CPU torch: that is how the tests
prove it gives the host pipeline's boxes and masks). NMS stays on the host, on the few
candidates above the score threshold: they come down as K x 6 numbers, and the host's
``choose_anchors`` then keeps exactly the boxes the host pipeline keeps.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np
import torch

from robot_instseg.engine.backends.base import Backend
from robot_instseg.engine.decoders.yolo_seg import (
    DEFAULT_AMODAL_MARGIN,
    YoloSegDecoder,
    YoloSegEndToEndDecoder,
    _YoloDecoder,
    amodal_publish_threshold,
    choose_anchors,
    choose_rows,
    grow_boxes,
)
from robot_instseg.engine.device.letterbox import DeviceLetterbox
from robot_instseg.engine.device.masks import DeviceMaskDecoder, MaskResult, Transfers
from robot_instseg.engine.device.runners import bind_runner
from robot_instseg.engine.errors import ModelError
from robot_instseg.engine.mask_sampling import MapSampler, crop_boxes
from robot_instseg.engine.ownership import Ownership
from robot_instseg.engine.postprocess import PostprocessSettings, logit
from robot_instseg.engine.preprocess import PreprocessConfig, as_three_channels, make_transform
from robot_instseg.engine.types import Detections


class DeviceFrame:
    """What the device pipeline returns for one image (the Segmenter wraps it in a SegmentResult)."""

    def __init__(self, detections: Detections, visible: Detections, ownership: Ownership,
                 times: tuple[float, float, float], transfers: Transfers, weak: Optional[Detections] = None) -> None:
        self.detections, self.visible, self.ownership, self.weak = detections, visible, ownership, weak
        self.times, self.transfers = times, transfers


class DevicePipeline:
    """A YOLO-seg model's whole frame on one torch device."""

    def __init__(self, backend: Backend, decoder: _YoloDecoder, preprocess: PreprocessConfig,
                 device: torch.device, input_rank: int) -> None:
        if not isinstance(decoder, (YoloSegDecoder, YoloSegEndToEndDecoder)):
            raise ModelError(f"the device pipeline decodes YOLO-seg outputs; this model's decoder is {decoder.name}")
        self.device, self.decoder, self.preprocess = device, decoder, preprocess
        in_h, in_w = preprocess.size
        shape = (1, 3, in_h, in_w) if input_rank == 4 else (3, in_h, in_w)
        self.runner = bind_runner(backend, device, shape)
        self.letterbox = DeviceLetterbox(preprocess, device, self.runner.input_dtype)
        self.masks = DeviceMaskDecoder(device)
        self._class_filter: tuple[Optional[frozenset], Optional[torch.Tensor]] = (None, None)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def warmup(self) -> None:
        in_h, in_w = self.preprocess.size
        self.runner.run(torch.zeros((1, 3, in_h, in_w), dtype=self.runner.input_dtype, device=self.device))
        self._sync()

    def resident_input(self, blob: np.ndarray) -> torch.Tensor:
        """A host input tensor copied to the device once (the bench's raw-inference baseline)."""
        return torch.from_numpy(np.ascontiguousarray(blob)).to(self.device).to(self.runner.input_dtype)

    def run_resident(self, blob: torch.Tensor) -> dict[str, torch.Tensor]:
        """The runtime alone on a tensor already on the device, outputs left there."""
        outputs = self.runner.run(blob)
        self._sync()
        return outputs

    def upload(self, image: np.ndarray, channel_order: str, transfers: Transfers) -> torch.Tensor:
        """The frame on the device as uint8 HxWx3 RGB: one copy of its bytes, channel swap there."""
        direct = image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and channel_order in ("rgb", "bgr")
        pixels = transfers.upload(image if direct else as_three_channels(image, channel_order), self.device)
        return pixels.flip(2) if direct and channel_order == "bgr" else pixels

    def segment(self, image: np.ndarray, channel_order: str, settings: PostprocessSettings,
                weak_below: Optional[float] = None) -> DeviceFrame:
        """Segment one uint8 image: raw and visible Detections, the ownership, stage times and bytes moved.

        ``weak_below``: the detections scoring under it come back apart (``DeviceFrame.weak``, raw masks)
        and take no part in the ownership of the others."""
        transfers = Transfers()
        t0 = time.perf_counter()
        if image.ndim < 2 or image.shape[0] == 0 or image.shape[1] == 0:
            as_three_channels(image, channel_order)  # raises the host pipeline's InputError
        transform = make_transform(image.shape[:2], self.preprocess)
        blob = self.letterbox(self.upload(image, channel_order, transfers), transform)
        self._sync()
        t1 = time.perf_counter()
        outputs = self.runner.run(blob)
        self._sync()
        t2 = time.perf_counter()
        detections, visible, ownership, weak = self._decode(outputs, transform, settings, transfers, weak_below)
        t3 = time.perf_counter()
        return DeviceFrame(detections, visible, ownership, ((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3),
                           transfers, weak)

    @property
    def batches(self) -> bool:
        """Whether several frames can run in one call (onnxruntime IO binding on a dynamic batch axis)."""
        return bool(getattr(self.runner, "batches", False))

    def segment_batch(self, frames: list[tuple[np.ndarray, str]], settings: PostprocessSettings,
                      weak_below: Optional[float] = None) -> list[DeviceFrame]:
        """Several frames (sizes free) in one runtime call: each uploaded and letterboxed on its own into one
        (N, 3, H, W) tensor, each decoded on its own from its row of the outputs; upload and inference time
        are shared out evenly."""
        import torch

        transfers = [Transfers() for _ in frames]
        t0 = time.perf_counter()
        transforms, blobs = [], []
        for (image, order), moved in zip(frames, transfers):
            if image.ndim < 2 or image.shape[0] == 0 or image.shape[1] == 0:
                as_three_channels(image, order)  # raises the host pipeline's InputError
            transform = make_transform(image.shape[:2], self.preprocess)
            transforms.append(transform)
            blobs.append(self.letterbox(self.upload(image, order, moved), transform))
        batch = torch.cat(blobs)
        self._sync()
        t1 = time.perf_counter()
        outputs = self.runner.run(batch)
        self._sync()
        t2 = time.perf_counter()
        n = len(frames)
        results = []
        for i, (transform, moved) in enumerate(zip(transforms, transfers)):
            t3 = time.perf_counter()
            rows = {name: value[i:i + 1] for name, value in outputs.items()}
            detections, visible, ownership, weak = self._decode(rows, transform, settings, moved, weak_below)
            results.append(DeviceFrame(detections, visible, ownership,
                                       ((t1 - t0) * 1e3 / n, (t2 - t1) * 1e3 / n, (time.perf_counter() - t3) * 1e3),
                                       moved, weak))
        return results

    def _allowed(self, class_ids: Optional[frozenset]) -> Optional[torch.Tensor]:
        if class_ids is None:
            return None
        if self._class_filter[0] != class_ids:
            self._class_filter = (class_ids, torch.tensor(sorted(class_ids), dtype=torch.int64, device=self.device))
        return self._class_filter[1]

    def _select(self, outputs: dict[str, torch.Tensor], settings: PostprocessSettings, transfers: Transfers
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, torch.Tensor, Optional[torch.Tensor]]:
        """(boxes in input pixels, scores, class ids, mask coefficients on the device, and the amodal head's
        coefficients or None) of the kept instances."""
        decoder = self.decoder
        if isinstance(decoder, YoloSegEndToEndDecoder):
            rows = outputs[decoder.preds][0]
            heads = transfers.download(rows[:, :6])
            keep = choose_rows(heads, settings)
            coefficients = rows[transfers.upload(keep.astype(np.int64), self.device), 6:]
            return heads[keep, :4], heads[keep, 4], heads[keep, 5].astype(np.int64), coefficients, None
        preds = outputs[decoder.preds][0]  # (4 + nc + nm, N)
        nc = preds.shape[0] - 4 - decoder.num_masks
        scores, class_ids = preds[4:4 + nc].max(0)
        wanted = scores >= settings.score_threshold
        allowed = self._allowed(settings.class_ids)
        if allowed is not None:
            wanted &= torch.isin(class_ids, allowed)
        anchors = wanted.nonzero().squeeze(1)
        candidates = torch.cat([preds[:4, anchors].T.to(torch.float32), scores[anchors, None].to(torch.float32)], 1)
        host = transfers.download(candidates)
        host_anchors = transfers.download(anchors)
        host_classes = transfers.download(class_ids[anchors])
        dtype = np.dtype(str(preds.dtype).replace("torch.", ""))  # the host path compares in the output's dtype
        kept, boxes, kept_scores, kept_classes = choose_anchors(
            host_anchors, host[:, 4].astype(dtype), host_classes,
            lambda a: host[np.searchsorted(host_anchors, a), :4].astype(dtype), settings)  # anchors ascend
        kept_t = transfers.upload(kept.astype(np.int64), self.device)
        amodal = getattr(decoder, "amodal", None)
        whole = outputs[amodal][0][:, kept_t].T if amodal is not None and amodal in outputs else None
        return boxes, kept_scores, kept_classes, preds[4 + nc:, kept_t].T, whole

    def _decode(self, outputs: dict[str, torch.Tensor], transform, settings: PostprocessSettings,
                transfers: Transfers, weak_below: Optional[float] = None
                ) -> tuple[Detections, Detections, Ownership, Optional[Detections]]:
        """(raw detections, visible detections, ownership, weak detections or None) of one frame's outputs."""
        boxes_input, scores, class_ids, coefficients, whole = self._select(outputs, settings, transfers)
        shape = transform.image_shape
        boxes = transform.clip_boxes(transform.to_image(boxes_input))
        mask_boxes = crop_boxes(boxes, shape)
        protos = outputs[self.decoder.protos][0]
        sampler = MapSampler.for_frame((int(protos.shape[1]), int(protos.shape[2])), transform)
        threshold = logit(settings.mask_threshold)
        whole_boxes: np.ndarray = np.zeros((0, 4), np.int32)
        whole_masks: list[np.ndarray] = []
        reaches: list[np.ndarray] = []
        if whole is not None:  # the amodal head: the decoder's grown windows, as the host pipeline decodes them
            grown = crop_boxes(grow_boxes(boxes, getattr(self.decoder, "amodal_margin", DEFAULT_AMODAL_MARGIN), shape), shape)
            publish = amodal_publish_threshold(getattr(self.decoder, "amodal_threshold", None), settings)
            whole_boxes, whole_masks, reaches = self.masks.whole_masks(whole, protos, grown, sampler, threshold,
                                                                       transfers, publish)
        weak = None
        if weak_below is not None:  # the weak ones: raw masks only, decoded apart so that they own nothing
            below = scores < weak_below
            rows = np.flatnonzero(below)
            weak_masks = self.masks.decode(coefficients[transfers.upload(rows.astype(np.int64), self.device)], protos,
                                           mask_boxes[rows], scores[rows], shape, sampler, threshold,
                                           transfers).masks if len(rows) else []
            weak = Detections(image_shape=shape, boxes=boxes[rows], scores=scores[rows], class_ids=class_ids[rows],
                              mask_boxes=mask_boxes[rows], masks=weak_masks,
                              **_whole(whole_boxes, whole_masks, reaches, rows))
            rows = np.flatnonzero(~below)
            boxes, scores, class_ids, mask_boxes = boxes[rows], scores[rows], class_ids[rows], mask_boxes[rows]
            coefficients = coefficients[transfers.upload(rows.astype(np.int64), self.device)]
            if whole_masks:
                whole_boxes, whole_masks = whole_boxes[rows], [whole_masks[i] for i in rows]
                reaches = [reaches[i] for i in rows] if reaches else []
        result: MaskResult = self.masks.decode(coefficients, protos, mask_boxes, scores, shape, sampler, threshold,
                                               transfers)
        detections = Detections(image_shape=shape, boxes=boxes, scores=scores, class_ids=class_ids,
                                mask_boxes=mask_boxes, masks=result.masks, amodal_boxes=whole_boxes,
                                amodal_masks=whole_masks, amodal_reach=reaches)
        labels = np.zeros(shape, np.uint16)
        for i, ((x0, y0, x1, y1), owned) in enumerate(zip(mask_boxes.tolist(), result.visible)):
            if result.alternative_of[i] < 0:
                labels[y0:y1, x0:x1][owned] = i + 1
        visible = detections[np.arange(len(detections))]
        visible.masks = result.visible
        visible.alternative_of = result.alternative_of.copy()
        return detections, visible, Ownership(labels, result.alternative_of), weak


def _whole(boxes: np.ndarray, masks: list[np.ndarray], reaches: list[np.ndarray], rows: np.ndarray) -> dict:
    """The amodal fields of ``rows`` of a frame's instances (none when the model has no amodal head)."""
    if not masks:
        return {}
    return {"amodal_boxes": boxes[rows], "amodal_masks": [masks[i] for i in rows],
            "amodal_reach": [reaches[i] for i in rows] if reaches else []}
