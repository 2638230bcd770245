"""Each decoder reads real onnxruntime output of a graph with known outputs, and masks and
boxes land exactly where they must in the original image, letterboxing included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx_graphs import IMAGE, NM, PAD_Y, constant_output_model, rect_mask, upsampled_rect, yolo_protos, yolo_row

from robot_instseg.engine import Segmenter, SegmenterConfig
from robot_instseg.engine.errors import ModelError


@pytest.fixture
def yolo_model(tmp_path: Path) -> Path:
    nc, n = 3, 8400
    preds = np.zeros((1, 4 + nc + NM, n), np.float32)
    rows = [
        yolo_row((100, 50, 300, 250), 0.9, 0, nc, 0),    # kept: cup, mask = region 0 inside box
        yolo_row((104, 54, 304, 254), 0.8, 0, nc, 0),    # same class, IoU ~0.92 -> suppressed
        yolo_row((104, 54, 304, 254), 0.7, 1, nc, 1),    # other class, same place -> kept (class-aware)
        yolo_row((400, 300, 600, 460), 0.6, 2, nc, 2),   # kept, far away
        yolo_row((10, 10, 60, 60), 0.1, 2, nc, 2),       # below the 0.25 threshold
    ]
    for j, row in enumerate(rows):
        preds[0, :, 1000 + j * 7] = row
    regions = [(120, 60 + PAD_Y, 280, 240 + PAD_Y),   # inside box 0 (image 120..280 x 60..240)
               (100, 40 + PAD_Y, 200, 120 + PAD_Y),   # partly outside box 2: must be cropped to the box
               (400, 300 + PAD_Y, 600, 460 + PAD_Y)]
    names = "{0: 'cup', 1: 'bowl', 2: 'box'}"
    return constant_output_model(tmp_path / "yolo.onnx", {"output0": preds, "output1": yolo_protos(regions)},
                                 metadata={"names": names, "task": "segment", "stride": "32", "imgsz": "[640, 640]"})


def test_yolo_seg_boxes_masks_classes_after_letterbox(yolo_model: Path) -> None:
    seg = Segmenter(yolo_model)
    assert seg.decoder.name == "yolo_seg" and seg.class_names == ["cup", "bowl", "box"]
    det = seg(IMAGE)
    assert list(det.class_names) == ["cup", "bowl", "box"]
    np.testing.assert_allclose(det.scores, [0.9, 0.7, 0.6], rtol=1e-6)
    np.testing.assert_allclose(det.boxes, [[100, 50, 300, 250], [104, 54, 304, 254], [400, 300, 600, 460]],
                               atol=1e-3)
    # Masks at full resolution, exactly the prototype region intersected with the box.
    np.testing.assert_array_equal(det.full_mask(0), upsampled_rect((480, 640), (120, 60, 280, 240)))
    np.testing.assert_array_equal(det.full_mask(1), upsampled_rect((480, 640), (100, 40, 200, 120),
                                                                   box=(104, 54, 304, 254)))
    assert det.full_mask(1)[54, 104] and not det.full_mask(1)[119, 199]  # box-cut corner kept, own rounded
    np.testing.assert_array_equal(det.full_mask(2), upsampled_rect((480, 640), (400, 300, 600, 460)))
    # Held cropped: no instance stores a full frame.
    assert all(m.shape == (y1 - y0, x1 - x0) for m, (x0, y0, x1, y1) in zip(det.masks, det.mask_boxes))


def test_yolo_seg_thresholds_class_filter_and_max_detections(yolo_model: Path) -> None:
    seg = Segmenter(yolo_model, SegmenterConfig(score_threshold=0.65))
    assert list(seg(IMAGE).scores.round(2)) == [0.9, 0.7]
    seg.update(score_threshold=0.05, iou_threshold=0.99)  # NMS off in effect: the duplicate returns
    assert len(seg(IMAGE)) == 5
    seg.update(class_filter=("box",))
    assert list(seg(IMAGE).class_names) == ["box", "box"]
    seg.update(class_filter=(0,), max_detections=1, iou_threshold=0.45)
    det = seg(IMAGE)
    assert list(det.class_names) == ["cup"] and det.scores[0] == pytest.approx(0.9)
    seg.update(score_threshold=0.95)
    empty = seg(IMAGE)
    assert len(empty) == 0 and empty.to_label_image().shape == (480, 640) and empty.to_rle() == []
    with pytest.raises(ValueError, match="not a class of this model"):
        seg.update(class_filter=("giraffe",))
    assert seg.config.class_filter == (0,)  # a refused update changes nothing


def test_yolo_seg_end_to_end_layout(tmp_path: Path) -> None:
    rows = np.zeros((1, 300, 6 + NM), np.float32)
    rows[0, 0, :6] = (200, 100 + PAD_Y, 400, 300 + PAD_Y, 0.8, 1)  # xyxy in input pixels
    rows[0, 0, 6] = 1.0
    rows[0, 1, :6] = (0, 0 + PAD_Y, 40, 40 + PAD_Y, 0.1, 0)
    model = constant_output_model(tmp_path / "e2e.onnx", {
        "output0": rows, "output1": yolo_protos([(240, 120 + PAD_Y, 320, 200 + PAD_Y)])},
        metadata={"names": "{0: 'cup', 1: 'bowl'}", "end2end": "True"})
    seg = Segmenter(model)
    assert seg.decoder.name == "yolo_seg_e2e"
    det = seg(IMAGE)
    assert list(det.class_names) == ["bowl"]
    np.testing.assert_allclose(det.boxes, [[200, 100, 400, 300]], atol=1e-3)
    np.testing.assert_array_equal(det.full_mask(0), upsampled_rect((480, 640), (240, 120, 320, 200)))


def test_detr_seg_layout_with_plain_resize(tmp_path: Path) -> None:
    q, c = 100, 4
    boxes = np.zeros((1, q, 4), np.float32)
    logits = np.full((1, q, c), -8.0, np.float32)
    masks = np.full((1, q, 120, 160), -10.0, np.float32)  # input 480x640 / 4
    # Query 7: class 2, box image (160, 120)-(480, 360) of 640x480 -> normalised cxcywh.
    boxes[0, 7] = (0.5, 0.5, 0.5, 0.5)
    logits[0, 7, 2] = 3.0
    masks[0, 7, 30:90, 40:120] = 10.0  # map px = 4 image px: x 160..480, y 120..360
    # Query 3: class 1 just below threshold
    logits[0, 3, 1] = -1.2
    model = constant_output_model(tmp_path / "detr.onnx", {"dets": boxes, "labels": logits, "masks": masks},
                                  input_shape=(1, 3, 480, 640))
    seg = Segmenter(model, SegmenterConfig(class_names=("bg", "cup", "bowl", "box")))
    assert seg.decoder.name == "detr_seg" and not seg.preprocess_config.letterbox
    det = seg(IMAGE)
    assert list(det.class_names) == ["bowl"]
    assert det.scores[0] == pytest.approx(1 / (1 + np.exp(-3.0)), rel=1e-5)
    np.testing.assert_allclose(det.boxes, [[160, 120, 480, 360]], atol=1e-3)
    np.testing.assert_array_equal(det.full_mask(0), upsampled_rect((480, 640), (160, 120, 480, 360)))


def test_maskrcnn_layout(tmp_path: Path) -> None:
    n = 3
    boxes = np.array([[100, 80 + PAD_Y, 300, 200 + PAD_Y], [0, PAD_Y, 50, 50 + PAD_Y], [10, 10, 20, 20]],
                     np.float32)
    scores = np.array([0.95, 0.2, 0.5], np.float32)
    labels = np.array([3, 1, 2], np.int64)
    masks = np.zeros((n, 1, 640, 640), np.float32)
    masks[0, 0, 100 + PAD_Y:180 + PAD_Y, 120:280] = 0.9
    masks[2, 0, 10:20, 10:20] = 0.9  # lies in the top padding: box clips to nothing in the image
    model = constant_output_model(tmp_path / "mrcnn.onnx",
                                  {"boxes": boxes, "labels": labels, "scores": scores, "masks": masks},
                                  input_shape=(1, 3, 640, 640))
    seg = Segmenter(model, SegmenterConfig(letterbox=True))
    assert seg.decoder.name == "maskrcnn"
    det = seg(IMAGE)
    np.testing.assert_allclose(det.scores, [0.95, 0.5])
    assert list(det.class_ids) == [3, 2]
    np.testing.assert_allclose(det.boxes[0], [100, 80, 300, 200], atol=1e-3)
    np.testing.assert_array_equal(det.full_mask(0), rect_mask((480, 640), 120, 100, 280, 180))
    assert det.masks[1].size == 0


def test_model_whose_outputs_match_no_decoder_lists_what_it_saw(tmp_path: Path) -> None:
    model = constant_output_model(tmp_path / "cls.onnx", {"logits": np.zeros((1, 1000), np.float32)})
    with pytest.raises(ModelError, match=r"no decoder understands.*logits \[1, 1000\] float32"):
        Segmenter(model)


def test_forced_format_that_does_not_fit_is_refused(yolo_model: Path) -> None:
    with pytest.raises(ModelError, match="model_format 'detr_seg' does not fit"):
        Segmenter(yolo_model, SegmenterConfig(model_format="detr_seg"))


def test_prefix_nms_keeps_exactly_what_full_nms_keeps() -> None:
    import cv2

    from robot_instseg.engine.postprocess import batched_nms

    rng = np.random.default_rng(3)
    for n, max_det in ((5000, 100), (3000, 10), (2000, 1000), (50, 100)):
        xy = rng.uniform(0, 600, (n, 2))
        boxes = np.hstack([xy, xy + rng.uniform(5, 80, (n, 2))]).astype(np.float32)
        scores = rng.random(n).astype(np.float32)
        classes = rng.integers(0, 3, n)
        xywh = boxes.astype(np.float64)
        xywh[:, 2:] -= xywh[:, :2]
        full = np.asarray(cv2.dnn.NMSBoxesBatched(xywh, scores, classes.astype(np.int32), 0.0, 0.45),
                          np.int64).reshape(-1)
        full = full[np.argsort(-scores[full], kind="stable")][:max_det]
        np.testing.assert_array_equal(batched_nms(boxes, scores, classes, 0.45, max_det), full)
