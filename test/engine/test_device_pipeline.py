"""The device pipeline (engine.device, torch) gives the host pipeline's output, run here on CPU torch:
the same input tensor bit for bit, the same boxes, scores and classes exactly, the same masks
(per-instance IoU >= 0.995, in practice identical), the same ownership, on the bundled model, a
random-weight Ultralytics-layout export and an end-to-end export, with real onnxruntime IO binding."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from onnx_graphs import IMAGE, NM, PAD_Y, constant_output_model, yolo_protos  # noqa: E402
from seg_models import random_weight_yolo_export  # noqa: E402

from robot_instseg.engine import Segmenter, SegmenterConfig  # noqa: E402
from robot_instseg.engine.device.letterbox import DeviceLetterbox  # noqa: E402
from robot_instseg.engine.device.masks import pack_bits, unpack_crops  # noqa: E402
from robot_instseg.engine.device.parity import compare_pipelines  # noqa: E402
from robot_instseg.engine.device.runners import OrtBindingRunner  # noqa: E402
from robot_instseg.engine.errors import ModelError  # noqa: E402
from robot_instseg.engine.frame_pipeline import segment_frame  # noqa: E402
from robot_instseg.engine.model_paths import default_model_path  # noqa: E402
from robot_instseg.engine.preprocess import PreprocessConfig, make_transform, preprocess  # noqa: E402
from robot_instseg.io.frame_sources import scenes  # noqa: E402

CPU = torch.device("cpu")
# Downscales (the usual case), identity, upscales and odd sizes, letterboxed both ways.
SIZES = [(480, 640), (333, 517), (720, 1280), (200, 300), (481, 641), (288, 384), (100, 700)]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [f.rgb for f in scenes(seed=5150, count=3)]


def _resized(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return rgb if rgb.shape[:2] == size else cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("config", [
    PreprocessConfig(size=(288, 384)),
    PreprocessConfig(size=(640, 640), channel_order="bgr"),
    PreprocessConfig(size=(256, 320), letterbox=False, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
])
@pytest.mark.parametrize("source_order", ["rgb", "bgr"])
def test_device_letterbox_equals_the_host_tensor_bit_for_bit(frames, config, source_order) -> None:
    letterbox = DeviceLetterbox(config, CPU, torch.float32)
    for size in SIZES:
        image = _resized(frames[0], size)
        image = image if source_order == "rgb" else np.ascontiguousarray(image[..., ::-1])
        host, transform = preprocess(image, config, source_order)
        pixels = torch.from_numpy(image)
        pixels = pixels.flip(2) if source_order == "bgr" else pixels
        device = letterbox(pixels, make_transform(image.shape[:2], config)).numpy()
        assert transform == make_transform(image.shape[:2], config)
        np.testing.assert_array_equal(device, host, err_msg=f"{size} {config}")


def test_device_resize_is_opencv_inter_linear_exactly() -> None:
    rng = np.random.default_rng(11)
    letterbox = DeviceLetterbox(PreprocessConfig(), CPU, torch.float32)
    for (h, w), (nh, nw) in [((480, 640), (288, 384)), ((1080, 1920), (360, 640)), ((123, 457), (200, 300)),
                             ((200, 200), (640, 640)), ((480, 640), (240, 320)), ((7, 5), (3, 11))]:
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ours = letterbox.resize(torch.from_numpy(image), nh, nw).numpy()
        np.testing.assert_array_equal(ours, cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR))


def test_fp16_input_is_the_host_cast() -> None:
    image = np.random.default_rng(2).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    config = PreprocessConfig(size=(288, 384))
    device = DeviceLetterbox(config, CPU, torch.float16)(torch.from_numpy(image), make_transform((480, 640), config))
    np.testing.assert_array_equal(device.numpy(), preprocess(image, config)[0].astype(np.float16))


def _assert_equal_output(summary: dict, min_instances: int) -> None:
    assert summary["mismatched_frames"] == [], summary  # boxes, scores, classes, alternatives identical
    assert summary["instances"] >= min_instances, summary
    assert summary["min_iou"] >= 0.995 and summary["median_iou"] == 1.0, summary
    assert summary["min_label_agreement"] >= 0.999, summary


def test_bundled_model_device_pipeline_equals_host(frames) -> None:
    config = SegmenterConfig(score_threshold=0.01)
    host = Segmenter(default_model_path(), config)
    device = Segmenter(default_model_path(), SegmenterConfig(score_threshold=0.01, pipeline="device"))
    assert host.pipeline_device == "host" and device.pipeline_device == "cpu"
    images = [(_resized(rgb, size), "rgb") for rgb in frames for size in SIZES]
    images += [(np.ascontiguousarray(_resized(frames[1], (480, 640))[..., ::-1]), "bgr"),
               (cv2.cvtColor(frames[2], cv2.COLOR_RGB2GRAY), "rgb")]
    _assert_equal_output(compare_pipelines(host, device, images), min_instances=250)


def test_weak_detections_leave_the_published_output_unchanged_on_both_pipelines(frames) -> None:
    """weak_score_threshold: the same published boxes, masks and label image as a plain decode (host and
    device), plus the detections from 0.05 up to 0.25 apart with their raw masks, the same on both."""
    plain = Segmenter(default_model_path(), SegmenterConfig())
    host = Segmenter(default_model_path(), SegmenterConfig(weak_score_threshold=0.05))
    device = Segmenter(default_model_path(), SegmenterConfig(weak_score_threshold=0.05, pipeline="device"))
    weak_seen = 0
    for rgb in frames:
        reference = segment_frame(plain, rgb, "rgb")
        assert reference.result.weak is None and len(reference.weak) == 0
        outputs = [segment_frame(seg, rgb, "rgb") for seg in (host, device)]
        for out in outputs:
            np.testing.assert_array_equal(out.visible.boxes, reference.visible.boxes)
            np.testing.assert_array_equal(out.visible.scores, reference.visible.scores)
            np.testing.assert_array_equal(out.labels, reference.labels)
            assert all(np.array_equal(a, b) for a, b in zip(out.visible.masks, reference.visible.masks))
            assert ((out.weak.scores >= 0.05) & (out.weak.scores < 0.25)).all() and out.weak.has_masks == (
                len(out.weak) > 0)
        np.testing.assert_array_equal(outputs[0].weak.boxes, outputs[1].weak.boxes)
        assert all(np.array_equal(a, b) for a, b in zip(outputs[0].weak.masks, outputs[1].weak.masks))
        assert outputs[1].weak.class_names == outputs[0].weak.class_names
        weak_seen += len(outputs[0].weak)
    assert weak_seen >= 3  # the case is exercised
    host.update(weak_score_threshold=0.25)  # not under score_threshold: off
    assert host.weak_below is None and host.settings.score_threshold == 0.25 and host.segment(frames[0]).weak is None
    host.update(weak_score_threshold=None)
    assert host.weak_below is None and host.segment(frames[0]).weak is None
    with pytest.raises(ValueError, match="weak_score_threshold"):
        host.update(weak_score_threshold=1.5)


def test_amodal_head_device_equals_host(frames, tmp_path: Path) -> None:
    """A model with the amodal head (the bundled network with a grown head): the device pipeline decodes the
    whole masks in the same grown, cut boxes as the host, the weak detections' too."""
    from amodal_fixtures import grown_bundled_model

    model = grown_bundled_model(tmp_path / "amodal.onnx")
    host = Segmenter(model, SegmenterConfig(score_threshold=0.01))
    device = Segmenter(model, SegmenterConfig(score_threshold=0.01, pipeline="device"))
    images = [(_resized(rgb, size), "rgb") for rgb in frames for size in SIZES[:4]]
    summary = compare_pipelines(host, device, images)
    _assert_equal_output(summary, min_instances=100)
    assert summary["whole_masks"] == summary["instances"], summary
    weak = [Segmenter(model, SegmenterConfig(weak_score_threshold=0.05, pipeline=p)) for p in ("host", "device")]
    weak_seen = 0
    for rgb in frames:
        outputs = [segment_frame(seg, rgb, "rgb") for seg in weak]
        for kind in ("weak", "visible"):
            a, b = (getattr(out, kind) for out in outputs)
            assert a.has_amodal == b.has_amodal == (len(a) > 0)
            np.testing.assert_array_equal(a.amodal_boxes, b.amodal_boxes)
            assert all(np.array_equal(m1, m2) for m1, m2 in zip(a.amodal_masks, b.amodal_masks))
        weak_seen += len(outputs[0].weak)
    assert weak_seen >= 1  # the case is exercised


def test_amodal_masks_published_tighter_than_reached_device_equals_host(frames, tmp_path: Path) -> None:
    """amodal_mask_threshold: both pipelines publish the whole masks at it and keep the head's reach (the order
    reads it) at the mask threshold, the weak detections' too."""
    from amodal_fixtures import grown_bundled_model

    model = grown_bundled_model(tmp_path / "amodal.onnx", publish=0.9)
    segmenters = [Segmenter(model, SegmenterConfig(score_threshold=0.01, weak_score_threshold=0.005, pipeline=p))
                  for p in ("host", "device")]
    summary = compare_pipelines(*segmenters, [(_resized(rgb, size), "rgb") for rgb in frames for size in SIZES[:2]])
    _assert_equal_output(summary, min_instances=50)
    tighter = 0
    for rgb in frames:
        outputs = [segment_frame(seg, rgb, "rgb") for seg in segmenters]
        for kind in ("weak", "visible"):
            a, b = (getattr(out, kind) for out in outputs)
            assert len(a.amodal_reach) == len(a) and len(b.amodal_reach) == len(b)
            for whole_a, whole_b, reach_a, reach_b in zip(a.amodal_masks, b.amodal_masks, a.amodal_reach,
                                                          b.amodal_reach):
                assert np.array_equal(whole_a, whole_b) and np.array_equal(reach_a, reach_b)
                assert not np.any(whole_a & ~reach_a)
                tighter += int(np.count_nonzero(reach_a & ~whole_a) > 0)
    assert tighter >= 10  # the published masks are the tighter ones


def test_random_weight_ultralytics_export_device_equals_host(frames, tmp_path: Path) -> None:
    model = random_weight_yolo_export(tmp_path)
    settings = dict(score_threshold=0.0, iou_threshold=0.7, max_detections=30)
    host = Segmenter(model, SegmenterConfig(**settings))
    device = Segmenter(model, SegmenterConfig(**settings, pipeline="device"))
    assert device.decoder.name == "yolo_seg" and device.preprocess_config.size == (256, 256)
    images = [(_resized(rgb, size), "rgb") for rgb in frames[:2] for size in SIZES[:5]]
    _assert_equal_output(compare_pipelines(host, device, images), min_instances=250)


def test_end_to_end_export_and_class_filter_device_equals_host(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    rows = np.zeros((1, 300, 6 + NM), np.float32)
    corners = rng.uniform(0, 560, (300, 2))
    rows[0, :, 0:2] = corners
    rows[0, :, 2:4] = corners + rng.uniform(20, 200, (300, 2))
    rows[0, :, 1::2][:, :2] += PAD_Y
    rows[0, :, 4] = rng.uniform(0, 1, 300)
    rows[0, :, 5] = rng.integers(0, 2, 300)
    rows[0, :, 6:] = rng.normal(0, 1, (300, NM))
    protos = yolo_protos([(4 * k, 4 * k + PAD_Y, 4 * k + 240, 4 * k + 200 + PAD_Y) for k in range(NM)])
    protos += rng.normal(0, 3, protos.shape).astype(np.float32)
    model = constant_output_model(tmp_path / "e2e.onnx", {"output0": rows, "output1": protos},
                                  metadata={"names": "{0: 'cup', 1: 'bowl'}", "end2end": "True"})
    host = Segmenter(model, SegmenterConfig(score_threshold=0.3))
    device = Segmenter(model, SegmenterConfig(score_threshold=0.3, pipeline="device"))
    assert device.decoder.name == "yolo_seg_e2e"
    _assert_equal_output(compare_pipelines(host, device, [(IMAGE, "rgb")]), min_instances=50)
    for seg in (host, device):
        seg.update(class_filter=("bowl",), max_detections=20)
    _assert_equal_output(compare_pipelines(host, device, [(IMAGE, "rgb")]), min_instances=20)


def test_io_binding_outputs_equal_session_run(frames) -> None:
    segmenter = Segmenter(default_model_path())
    feed = segmenter.input_feed(frames[0])
    runner = OrtBindingRunner(segmenter.backend, CPU, (1, 3, 288, 384))
    bound = runner.run(torch.from_numpy(feed[segmenter.input.name]))
    for name, value in segmenter.backend.run(feed).items():
        np.testing.assert_array_equal(bound[name].numpy(), value)


def test_traffic_is_the_uint8_frame_up_and_a_few_kilobytes_down(frames) -> None:
    device = Segmenter(default_model_path(), SegmenterConfig(pipeline="device"))
    first = device.segment(frames[0])  # also uploads the frame size's sampling taps, once
    result = device.segment(frames[0])
    assert first.transfer_bytes[0] > result.transfer_bytes[0]
    up, down = result.transfer_bytes
    assert 480 * 640 * 3 <= up <= 480 * 640 * 3 + 4096, up
    mask_bytes = sum(int(np.prod(m.shape)) for m in result.detections.masks) // 8
    assert len(result.detections) >= 5 and down <= 2 * mask_bytes + 64 * 1024, (down, mask_bytes)
    assert up + down <= 1.5e6  # issue 16's budget per 640x480 frame


def test_pack_bits_round_trip() -> None:
    rng = np.random.default_rng(9)
    boxes = np.array([[0, 0, 3, 5], [10, 10, 10, 20], [4, 2, 17, 9]], np.int32)
    crops = [rng.random((y1 - y0, x1 - x0)) > 0.5 for x0, y0, x1, y1 in boxes.tolist()]
    flat = torch.from_numpy(np.concatenate([c.ravel() for c in crops]))
    back = unpack_crops(pack_bits(flat).numpy(), boxes)
    assert [b.shape for b in back] == [c.shape for c in crops]
    assert all(np.array_equal(b, c) for b, c in zip(back, crops))


def test_pipeline_choice(tmp_path: Path) -> None:
    assert Segmenter(default_model_path()).device_pipeline is None  # auto on a CPU runtime: host
    with pytest.raises(ModelError, match="unknown pipeline"):
        Segmenter(default_model_path(), SegmenterConfig(pipeline="gpu"))
    detr = constant_output_model(tmp_path / "detr.onnx", {
        "dets": np.full((1, 5, 4), 0.5, np.float32), "labels": np.zeros((1, 5, 3), np.float32),
        "masks": np.zeros((1, 5, 64, 64), np.float32)}, input_shape=(1, 3, 256, 256))
    with pytest.raises(ModelError, match="YOLO-seg outputs only"):
        Segmenter(detr, SegmenterConfig(pipeline="device"))
    assert Segmenter(detr).device_pipeline is None


def test_compare_tool_reports_equal_pipelines_and_exits_zero() -> None:
    import json
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "scripts" / "compare_pipelines.py"
    done = subprocess.run([sys.executable, str(script), "--count", "2"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["frames"] == 2 and summary["instances"] > 0 and summary["mismatched_frames"] == []
    bad = subprocess.run([sys.executable, str(script), "--model", "/nonexistent.onnx"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
