"""Several frames in one session.run give exactly what each frame gives alone (one node, many cameras)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from robot_instseg.engine.batch_axis import with_dynamic_batch
from robot_instseg.engine.errors import ModelError
from robot_instseg.engine.frame_pipeline import segment_frame, segment_frames
from robot_instseg.engine.segmenter import Segmenter, SegmenterConfig, load_segmenter
from robot_instseg.synthetic.sample_images import sample_frame


def _frames() -> list[tuple[np.ndarray, str]]:
    """Three cameras of different sizes and channel orders, each with its own scene."""
    return [(sample_frame(480, 640, seed=1), "rgb"), (sample_frame(240, 320, seed=2)[:, :, ::-1].copy(), "bgr"),
            (sample_frame(600, 800, seed=3), "rgb")]


def _assert_same(got, want) -> None:
    assert got.image_shape == want.image_shape and len(got) == len(want)
    assert np.array_equal(got.boxes, want.boxes) and np.array_equal(got.scores, want.scores)
    assert np.array_equal(got.class_ids, want.class_ids) and np.array_equal(got.mask_boxes, want.mask_boxes)
    assert all(np.array_equal(a, b) for a, b in zip(got.masks, want.masks))


def _assert_batch_equals_alone(segmenter: Segmenter, frames, min_instances: int = 1) -> None:
    alone = [segment_frame(segmenter, image, order) for image, order in frames]
    together = segment_frames(segmenter, frames)
    assert [o.result.batch_size for o in together] == [len(frames)] * len(frames)
    assert sum(len(o.visible) for o in alone) >= min_instances  # something to compare
    for got, want in zip(together, alone):
        _assert_same(got.result.detections, want.result.detections)
        _assert_same(got.visible, want.visible)
        _assert_same(got.weak, want.weak)
        assert np.array_equal(got.labels, want.labels)


def test_bundled_model_batches_and_equals_one_by_one() -> None:
    segmenter = load_segmenter(config=SegmenterConfig(weak_score_threshold=0.1))
    assert segmenter.batch_capacity is None  # the bundled model carries a dynamic batch axis
    _assert_batch_equals_alone(segmenter, _frames(), min_instances=10)


def test_max_batch_splits_into_several_runs() -> None:
    segmenter = load_segmenter()
    frames = _frames()
    results = segmenter.segment_batch(frames, max_batch=2)
    assert [r.batch_size for r in results] == [2, 2, 1]
    for (image, order), got in zip(frames, results):
        _assert_same(got.detections, segmenter.segment(image, order).detections)


def test_random_weight_ultralytics_layout_export_batches(tmp_path: Path) -> None:
    from seg_models import random_weight_yolo_export

    static = random_weight_yolo_export(tmp_path)
    assert Segmenter(static).batch_capacity == 1  # exported at batch 1: frames run one after another
    dynamic = with_dynamic_batch(static, tmp_path / "dynamic.onnx")
    segmenter = Segmenter(dynamic, SegmenterConfig(score_threshold=0.0, iou_threshold=0.7, max_detections=30))
    assert segmenter.batch_capacity is None
    _assert_batch_equals_alone(segmenter, _frames())


def test_static_model_runs_frames_one_after_another(tmp_path: Path) -> None:
    from seg_models import known_instances_model

    segmenter = Segmenter(known_instances_model(tmp_path / "known.onnx"))
    results = segmenter.segment_batch(_frames())
    assert [r.batch_size for r in results] == [1, 1, 1] and all(len(r.detections) == 3 for r in results)


def _baked_batch_model(path: Path) -> Path:
    """Input [1, 3, 8, 8] flattened by a Reshape whose target shape is the constant [1, 192]."""
    graph = helper.make_graph([helper.make_node("Reshape", ["images", "shape"], ["output0"])], "baked",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 192])],
                              initializer=[numpy_helper.from_array(np.array([1, 192], np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    import onnx

    onnx.save(model, str(path))
    return path


def test_a_graph_with_the_batch_baked_in_is_refused_and_nothing_written(tmp_path: Path) -> None:
    out = tmp_path / "out.onnx"
    with pytest.raises(ModelError, match="batch of 2"):
        with_dynamic_batch(_baked_batch_model(tmp_path / "baked.onnx"), out)
    assert not out.exists()


def test_cli_export_dynamic_batch(tmp_path: Path, capsys) -> None:
    from robot_instseg.cli import main

    baked = _baked_batch_model(tmp_path / "baked.onnx")
    assert main(["export", str(baked), "--out", str(tmp_path / "x.onnx")]) != 0
    assert "--dynamic-batch" in capsys.readouterr().err
    assert main(["export", str(baked), "--out", str(tmp_path / "x.onnx"), "--dynamic-batch"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("cannot batch" in err or "does not run with a batch" in err)


def test_device_pipeline_batches_and_equals_one_by_one() -> None:
    """The device pipeline (here on CPU torch, as CI runs it) batches through onnxruntime IO binding: each row
    equals the frame run alone, and a batch of 2 after a batch of 3 rebinds its outputs correctly."""
    pytest.importorskip("torch")
    segmenter = load_segmenter(config=SegmenterConfig(pipeline="device", weak_score_threshold=0.1))
    assert segmenter.pipeline_device == "cpu" and segmenter.batch_capacity is None
    frames = _frames()
    _assert_batch_equals_alone(segmenter, frames, min_instances=10)
    _assert_batch_equals_alone(segmenter, frames[:2])
    host = load_segmenter(config=SegmenterConfig(pipeline="host", weak_score_threshold=0.1))
    for got, want in zip(segment_frames(segmenter, frames), segment_frames(host, frames)):
        assert np.array_equal(got.labels, want.labels)  # and the device pipeline's batch equals the host's
