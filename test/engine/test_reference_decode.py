"""Our fast per-box mask decode equals the frameworks' published decode (engine.reference_decode,
torch F.interpolate, full frame) on real ONNX graphs run by onnxruntime, letterboxed or not."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from onnx_graphs import constant_output_model  # noqa: E402
from seg_models import random_weight_yolo_export  # noqa: E402

from robot_instseg.engine import Segmenter, SegmenterConfig  # noqa: E402
from robot_instseg.engine.model_paths import default_model_path  # noqa: E402
from robot_instseg.engine.reference_decode import ParityReport, decode_both, parity_ious  # noqa: E402
from robot_instseg.io.frame_sources import scenes  # noqa: E402

# (h, w): the bundled 288x384 input takes 4:3 frames unpadded; the others are letterboxed,
# several with padding that is not a whole number of prototype cells.
SIZES = [(480, 640), (333, 517), (720, 1280), (200, 300), (481, 641)]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [f.rgb for f in scenes(seed=5150, count=3)]


def _parity(segmenter: Segmenter, frames, sizes) -> dict:
    report = ParityReport()
    for size in sizes:
        for k, rgb in enumerate(frames):
            image = rgb if rgb.shape[:2] == size else cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            fast, reference = decode_both(segmenter, image)
            assert all(m.shape == (y1 - y0, x1 - x0) for m, (x0, y0, x1, y1) in zip(fast.masks, fast.mask_boxes))
            report.add(parity_ious(fast, reference), f"{size} frame {k}")
    return report.summary()


def _assert_parity(summary: dict, min_instances: int) -> None:
    assert summary["instances"] >= min_instances, summary
    assert summary["median_iou"] >= 0.999 and summary["min_iou"] >= 0.995, summary


def test_bundled_model_masks_equal_the_ultralytics_decode(frames) -> None:
    segmenter = Segmenter(default_model_path(), SegmenterConfig(score_threshold=0.01))
    _assert_parity(_parity(segmenter, frames, SIZES), min_instances=150)


def test_random_weight_ultralytics_layout_export_square_input(frames, tmp_path: Path) -> None:
    model = random_weight_yolo_export(tmp_path)
    segmenter = Segmenter(model, SegmenterConfig(score_threshold=0.0, iou_threshold=0.7, max_detections=30))
    assert segmenter.decoder.name == "yolo_seg" and segmenter.preprocess_config.letterbox
    _assert_parity(_parity(segmenter, frames[:2], SIZES), min_instances=300)


def _smooth_maps(rng, count: int, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Logit-like maps with blobs and gradients, so thresholds cross at sub-pixel positions."""
    coarse = rng.normal(0, scale, (count, max(shape[0] // 8, 2), max(shape[1] // 8, 2))).astype(np.float32)
    return np.stack([cv2.resize(c, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC) for c in coarse])


@pytest.mark.parametrize("letterbox", [False, True])
def test_detr_seg_masks_equal_the_rf_detr_decode(frames, tmp_path: Path, letterbox: bool) -> None:
    rng = np.random.default_rng(3)
    q, c = 30, 4
    boxes = np.concatenate([rng.uniform(0.2, 0.8, (1, q, 2)), rng.uniform(0.05, 0.4, (1, q, 2))], -1)
    logits = rng.normal(0, 2, (1, q, c)).astype(np.float32)
    masks = _smooth_maps(rng, q, (96, 96), 4.0)[None]
    model = constant_output_model(tmp_path / "detr.onnx", {"dets": boxes.astype(np.float32), "labels": logits,
                                                           "masks": masks}, input_shape=(1, 3, 384, 384))
    segmenter = Segmenter(model, SegmenterConfig(class_names=("bg", "cup", "bowl", "box"), score_threshold=0.2,
                                                 letterbox=letterbox))
    assert segmenter.decoder.name == "detr_seg"
    _assert_parity(_parity(segmenter, frames[:1], SIZES), min_instances=40)


@pytest.mark.parametrize("letterbox", [False, True])
def test_maskrcnn_masks_equal_the_resized_torchvision_frame(frames, tmp_path: Path, letterbox: bool) -> None:
    rng = np.random.default_rng(4)
    n = 12
    xy = rng.uniform(0, 200, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(20, 100, (n, 2))], 1).astype(np.float32)
    probabilities = 1 / (1 + np.exp(-_smooth_maps(rng, n, (320, 320), 5.0)))
    model = constant_output_model(tmp_path / "mrcnn.onnx", {
        "boxes": boxes, "labels": rng.integers(1, 4, n).astype(np.int64),
        "scores": rng.uniform(0.3, 1.0, n).astype(np.float32), "masks": probabilities[:, None].astype(np.float32)},
        input_shape=(1, 3, 320, 320))
    segmenter = Segmenter(model, SegmenterConfig(letterbox=letterbox))
    assert segmenter.decoder.name == "maskrcnn"
    _assert_parity(_parity(segmenter, frames[:1], SIZES), min_instances=40)


def test_the_oracle_tells_a_wrong_sampling_apart(frames) -> None:
    """Parity is not vacuous: masks sampled one prototype cell off score below the bar."""
    from robot_instseg.engine import mask_sampling

    segmenter = Segmenter(default_model_path(), SegmenterConfig(score_threshold=0.25))
    original = mask_sampling.axis_taps

    def one_cell_off(start: int, length: int, size: int) -> mask_sampling.AxisTaps:
        taps = original(start, length, size)
        last = start + length - 1
        return mask_sampling.AxisTaps(np.minimum(taps.lower + 1, last), np.minimum(taps.upper + 1, last), taps.weight)

    cached = mask_sampling._sampler  # samplers are cached per map shape and letterbox: none may outlive the patch
    try:
        cached.cache_clear()
        mask_sampling.axis_taps = one_cell_off
        summary = _parity(segmenter, frames[:1], [(480, 640)])
    finally:
        mask_sampling.axis_taps = original
        cached.cache_clear()
    assert summary["instances"] > 0 and summary["min_iou"] < 0.995, summary
