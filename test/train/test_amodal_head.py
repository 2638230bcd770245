"""The amodal head (issue 32): learnt from amodal ground truth, exported as a third output, decoded like the
visible masks (checked against the torch reference), and grown onto a model that lacks it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from robot_instseg.engine import Segmenter  # noqa: E402
from robot_instseg.engine.decoders.base import masks_for  # noqa: E402
from robot_instseg.engine.reference_decode import parity_ious, reference_masks  # noqa: E402
from robot_instseg.engine.segmenter import SegmenterConfig  # noqa: E402
from robot_instseg.engine.types import Detections  # noqa: E402
from robot_instseg.synthetic.dataset import write_dataset  # noqa: E402
from robot_instseg.train.augment import AugmentConfig, augment_instances  # noqa: E402
from robot_instseg.train.dataset import CocoSegDataset, DatasetSource  # noqa: E402
from robot_instseg.train.export import AMODAL_MASK_THRESHOLD, export_checkpoint, export_onnx  # noqa: E402
from robot_instseg.train.from_onnx import compactseg_from_onnx  # noqa: E402
from robot_instseg.train.model import CompactSeg, ModelConfig  # noqa: E402
from robot_instseg.train.trainer import TrainConfig, Trainer  # noqa: E402


@pytest.fixture(scope="module")
def clutter(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clutter")
    write_dataset(out, count=4, seed=7, height=120, width=160, min_visible=0.1)
    return out


def _config(data: Path, out: Path, **changes) -> TrainConfig:
    source = DatasetSource(data / "annotations.json", data)
    base = dict(train=[source], val=source, out=out, epochs=1, batch=2, imgsz=(96, 128), width=8, num_masks=8,
                warmup_iters=2, seed=3, progress=False, amodal=True, augment=AugmentConfig.off())
    base.update(changes)
    return TrainConfig(**base)


def test_the_dataset_holds_whole_masks_that_contain_the_visible_ones(clutter: Path) -> None:
    data = CocoSegDataset([DatasetSource(clutter / "annotations.json", clutter)], (96, 128))
    hidden = 0
    for sample in data.samples:
        assert sample.amodal is not None and sample.has_amodal is not None and sample.has_amodal.all()
        assert sample.amodal.shape == sample.masks.shape and not np.any(sample.masks & ~sample.amodal)
        hidden += int(np.count_nonzero(sample.amodal & ~sample.masks))
    assert hidden > 100


def test_augmentation_moves_whole_masks_with_their_instances_and_copy_paste_hides_only_visible_pixels() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 80, 3), np.uint8)
    visible = np.zeros((1, 64, 80), bool)
    visible[0, 10:30, 10:30] = True
    whole = visible.copy()
    whole[0, 10:30, 30:40] = True
    flip = AugmentConfig(**{**AugmentConfig.off().__dict__, "flip_lr": 1.0})
    _, masks, _, amodal = augment_instances(image, visible, np.array([0]), whole, rng, flip)
    np.testing.assert_array_equal(masks, visible[:, :, ::-1])
    np.testing.assert_array_equal(amodal, whole[:, :, ::-1])
    donor = np.zeros((1, 64, 80), bool)
    donor[0, 15:25, 20:60] = True  # covers part of the instance
    paste = AugmentConfig(**{**AugmentConfig.off().__dict__, "copy_paste": 1.0})
    _, masks, classes, amodal = augment_instances(image, visible, np.array([0]), whole, np.random.default_rng(1),
                                                  paste, (image, donor, np.array([3]), donor))
    assert list(classes) == [0, 3] and amodal is not None
    assert not masks[0, 18, 25] and amodal[0, 18, 25]  # hidden now, still part of the whole object
    np.testing.assert_array_equal(amodal[0], whole[0])


def test_amodal_training_exports_a_third_output_decoded_like_the_torch_reference(clutter: Path,
                                                                                 tmp_path: Path) -> None:
    trainer = Trainer(_config(clutter, tmp_path / "run", max_iters=40, lr=5e-3, epochs=20))
    trainer.fit()
    epochs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert epochs[-1]["loss_amodal"] < 0.8 * epochs[0]["loss_amodal"]  # the amodal term is learnt
    assert {"amodal_AP", "amodal_AP50", "order_accuracy"} <= set(epochs[-1])  # validated every epoch
    path = export_checkpoint(tmp_path / "run" / "last.pt", tmp_path / "amodal.onnx")
    segmenter = Segmenter(path, SegmenterConfig(score_threshold=0.01))
    assert segmenter.decoder.amodal == "amodal_coefficients" and segmenter.decoder.amodal_margin == 0.5
    image = np.asarray(__import__("cv2").imread(str(clutter / "images" / "000001.png")))[:, :, ::-1].copy()
    raw, transform = segmenter.infer(image)
    selection = segmenter.decoder.select(raw, transform, segmenter.settings)
    assert selection.amodal is not None and len(selection.boxes) > 0
    detections = masks_for(selection, transform)
    assert detections.has_amodal
    whole = masks_for(selection.amodal, transform)
    assert parity_ious(whole, reference_masks(selection.amodal, transform)) == [1.0] * len(whole)
    # each whole mask's window lies within the visible box grown by half its size per side, clipped to the image
    for box, window in zip(detections.boxes, detections.amodal_boxes):
        w, h = box[2] - box[0], box[3] - box[1]
        assert window[0] >= np.floor(max(box[0] - 0.5 * w, 0)) and window[2] <= np.ceil(min(box[2] + 0.5 * w, 160))
        assert window[1] >= np.floor(max(box[1] - 0.5 * h, 0)) and window[3] <= np.ceil(min(box[3] + 0.5 * h, 120))
    # the instances' order and selection carry through indexing, as the visible masks do
    picked = detections[[len(detections) - 1]]
    np.testing.assert_array_equal(picked.amodal_masks[0], detections.amodal_masks[-1])


def test_a_model_without_the_head_grows_one_that_starts_as_its_visible_masks(clutter: Path, tmp_path: Path) -> None:
    plain = CompactSeg(ModelConfig(num_classes=6, num_masks=8, width=8, imgsz=(96, 128)))
    export_onnx(plain, ["cup", "bowl", "box", "bottle", "can", "tool"], tmp_path / "plain.onnx")
    assert Segmenter(tmp_path / "plain.onnx").decoder.amodal is None  # no head: decoded as before
    trainer = Trainer(_config(clutter, tmp_path / "run", init=tmp_path / "plain.onnx", max_iters=0))
    for head in trainer.model.heads:
        torch.testing.assert_close(head.amodal.weight, head.coef[1].weight)
    trainer.model.cpu()
    path = export_onnx(trainer.model, trainer.names, tmp_path / "grown.onnx")
    read_back, _ = compactseg_from_onnx(path)
    assert read_back.config.amodal
    detections = Segmenter(path, SegmenterConfig(score_threshold=0.0)).segment(np.full((120, 160, 3), 90, np.uint8)).detections
    assert detections.has_amodal
    assert len(detections.amodal_reach) == len(detections)  # the export publishes above the mask threshold
    for i in range(len(detections)):  # same coefficients, wider window: the visible mask within the reach
        x0, y0, x1, y1 = detections.mask_boxes[i]
        whole = np.zeros(detections.image_shape, bool)
        wx0, wy0, wx1, wy1 = detections.amodal_boxes[i]
        whole[wy0:wy1, wx0:wx1] = detections.amodal_reach[i]
        np.testing.assert_array_equal(whole[y0:y1, x0:x1], detections.masks[i])
        published = np.zeros(detections.image_shape, bool)
        published[wy0:wy1, wx0:wx1] = detections.amodal_masks[i]
        assert not np.any(published & ~whole)  # published where the head is surer: within the reach


def test_a_wider_amodal_margin_is_learnt_exported_and_decoded_within_it(clutter: Path, tmp_path: Path) -> None:
    """--amodal-margin: the loss, the checkpoint, the export's metadata, the decoder and a read-back agree."""
    from robot_instseg.train.loss import LossConfig

    Trainer(_config(clutter, tmp_path / "first", max_iters=1)).fit()  # learnt at the default margin
    trainer = Trainer(_config(clutter, tmp_path / "run", max_iters=2, loss=LossConfig(amodal_margin=1.0),
                              init=tmp_path / "first" / "last.pt"))  # the margin is no part of the network
    assert trainer.model.config.amodal_margin == 1.0
    trainer.fit()
    path = export_checkpoint(tmp_path / "run" / "last.pt", tmp_path / "wide.onnx")
    segmenter = Segmenter(path, SegmenterConfig(score_threshold=0.0))
    assert segmenter.decoder.amodal_margin == 1.0
    assert segmenter.decoder.amodal_threshold == AMODAL_MASK_THRESHOLD == 0.9  # the export publishes at 0.9
    assert compactseg_from_onnx(path)[0].config.amodal_margin == 1.0
    image = np.asarray(__import__("cv2").imread(str(clutter / "images" / "000001.png")))[:, :, ::-1].copy()
    detections = segmenter.segment(image).detections
    assert detections.has_amodal and len(detections)
    past_half = 0
    for box, window in zip(detections.boxes, detections.amodal_boxes):
        w, h = box[2] - box[0], box[3] - box[1]
        assert window[0] >= np.floor(max(box[0] - w, 0)) and window[2] <= np.ceil(min(box[2] + w, 160))
        assert window[1] >= np.floor(max(box[1] - h, 0)) and window[3] <= np.ceil(min(box[3] + h, 120))
        past_half += bool(window[0] < np.floor(box[0] - 0.5 * w) or window[2] > np.ceil(box[2] + 0.5 * w)
                          or window[1] < np.floor(box[1] - 0.5 * h) or window[3] > np.ceil(box[3] + 0.5 * h))
    assert past_half  # some whole mask reaches past the default margin's window


def test_whole_masks_published_at_the_models_threshold_and_the_order_read_from_the_reach(clutter: Path,
                                                                                         tmp_path: Path) -> None:
    """amodal_mask_threshold (metadata): published whole masks equal the torch reference at that threshold, the
    reach equals it at the mask threshold (the model without the metadata publishes the reach), and the
    occlusion order is the reach's."""
    from amodal_fixtures import grown_bundled_model

    from robot_instseg.engine.occlusion import occlusion_order
    from robot_instseg.engine.postprocess import logit

    image = np.asarray(__import__("cv2").imread(str(clutter / "images" / "000001.png")))[:, :, ::-1].copy()
    one = Segmenter(grown_bundled_model(tmp_path / "one.onnx"), SegmenterConfig(score_threshold=0.01))
    two = Segmenter(grown_bundled_model(tmp_path / "two.onnx", publish=0.9), SegmenterConfig(score_threshold=0.01))
    assert one.decoder.amodal_threshold is None and two.decoder.amodal_threshold == 0.9
    raw, transform = two.infer(image)
    selection = two.decoder.select(raw, transform, two.settings)
    found = masks_for(selection, transform)
    assert len(found) >= 3 and len(found.amodal_reach) == len(found)
    reach, whole = (Detections(image_shape=found.image_shape, boxes=found.boxes, scores=found.scores,
                               class_ids=found.class_ids, mask_boxes=found.amodal_boxes, masks=masks)
                    for masks in (found.amodal_reach, found.amodal_masks))
    assert parity_ious(reach, reference_masks(selection.amodal, transform)) == [1.0] * len(found)
    strict = dataclasses.replace(selection.amodal, threshold=logit(0.9))
    assert parity_ious(whole, reference_masks(strict, transform)) == [1.0] * len(found)
    single = one.segment(image).detections
    assert not single.amodal_reach and all(np.array_equal(a, b) for a, b in zip(single.amodal_masks,
                                                                                  found.amodal_reach))
    assert sum(int(np.count_nonzero(r & ~w)) for r, w in zip(found.amodal_reach, found.amodal_masks)) > 0
    published = two.segment(image).detections
    ours = occlusion_order(published)
    assert ours.occluded_by == occlusion_order(single).occluded_by
    assert any(sum(o) for o in ours.occluded_by)  # an order is found
