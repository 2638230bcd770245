"""The trainer: data -> checkpoint (weights only) -> verified ONNX -> Segmenter, resume, and
the pieces under it (augmentation keeps masks exact, the loss goes down, evaluation is exact)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from robot_instseg.dataset.evaluate import boundary_f_measure, evaluate_detections, load_coco_quiet
from robot_instseg.engine import Segmenter
from robot_instseg.engine.types import Detections
from robot_instseg.synthetic.dataset import write_dataset
from robot_instseg.train.augment import AugmentConfig, augment
from robot_instseg.train.dataset import CocoSegDataset, DatasetSource
from robot_instseg.train.export import export_checkpoint, load_checkpoint
from robot_instseg.train.trainer import TrainConfig, Trainer, make_batch


@pytest.fixture(scope="module")
def tiny_coco(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    write_dataset(out, count=4, seed=5, height=120, width=160)
    return out


def _config(data: Path, out: Path, **changes) -> TrainConfig:
    source = DatasetSource(data / "annotations.json", data)
    base = dict(train=[source], val=source, out=out, epochs=2, batch=2, imgsz=(96, 128), width=8, num_masks=8,
                warmup_iters=2, seed=3, progress=False)
    base.update(changes)
    return TrainConfig(**base)


def test_short_training_run_goes_from_coco_to_a_checkpoint_to_an_onnx_the_segmenter_runs(tiny_coco, tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(_config(tiny_coco, run, max_iters=3))
    metrics = trainer.fit()
    assert trainer.iteration == 3 and {"AP", "AP50", "AP75", "boundary_f1@2px"} <= set(metrics)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["iteration"] == 3
    state = load_checkpoint(run / "last.pt")  # weights_only=True inside
    assert state["names"] == ["cup", "bowl", "box", "bottle", "can", "tool"]
    assert state["config"]["imgsz"] == (96, 128)
    onnx_path = export_checkpoint(run / "best.pt", tmp_path / "tiny.onnx")
    seg = Segmenter(onnx_path)
    assert seg.class_names == state["names"] and seg.preprocess_config.size == (96, 128)
    rgb = np.full((120, 160, 3), 100, np.uint8)
    det = seg(rgb)
    assert det.image_shape == (120, 160)


def test_resume_continues_from_the_next_epoch_with_the_same_weights(tiny_coco, tmp_path):
    run = tmp_path / "run"
    Trainer(_config(tiny_coco, run, epochs=1)).fit()
    first = load_checkpoint(run / "last.pt")
    resumed = Trainer(_config(tiny_coco, run, epochs=2, resume=True))
    assert resumed.start_epoch == 1 and resumed.iteration == first["iteration"]
    for name, value in first["train_model"].items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value)
    resumed.fit()
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    with pytest.raises(FileNotFoundError, match="no .*last.pt"):
        Trainer(_config(tiny_coco, tmp_path / "empty", resume=True))


def test_init_fine_tunes_from_a_checkpoints_weights_on_a_new_schedule(tiny_coco, tmp_path):
    Trainer(_config(tiny_coco, tmp_path / "base", epochs=1)).fit()
    base = load_checkpoint(tmp_path / "base" / "best.pt")
    tuned = Trainer(_config(tiny_coco, tmp_path / "tuned", epochs=1, init=tmp_path / "base" / "best.pt"))
    assert tuned.start_epoch == 0 and tuned.iteration == 0  # a new schedule: warm-up and cosine from the start
    for name, value in base["model"].items():  # the EMA weights, the ones that were validated and exported
        torch.testing.assert_close(tuned.model.state_dict()[name], value)
        torch.testing.assert_close(tuned.ema.ema.state_dict()[name], value)
    tuned.fit()
    assert load_checkpoint(tmp_path / "tuned" / "last.pt")["train_config"]["init"].endswith("best.pt")
    with pytest.raises(ValueError, match="network"):
        Trainer(_config(tiny_coco, tmp_path / "wider", width=16, init=tmp_path / "base" / "best.pt"))
    with pytest.raises(ValueError, match="--resume"):
        Trainer(_config(tiny_coco, tmp_path / "base", resume=True, init=tmp_path / "base" / "best.pt"))
    with pytest.raises(FileNotFoundError, match="--init"):
        Trainer(_config(tiny_coco, tmp_path / "none", init=tmp_path / "missing.pt"))


def test_init_from_our_onnx_export_starts_from_the_exported_network(tiny_coco, tmp_path):
    """The bundled model ships as ONNX only; --init MODEL.onnx fine-tunes it."""
    Trainer(_config(tiny_coco, tmp_path / "base", epochs=1)).fit()
    onnx_path = export_checkpoint(tmp_path / "base" / "best.pt", tmp_path / "base.onnx")
    tuned = Trainer(_config(tiny_coco, tmp_path / "tuned", epochs=1, init=onnx_path))
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(4))
    reference = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"images": x.numpy()})
    tuned.model.eval().export_mode = True
    with torch.no_grad():
        ours = [t.numpy() for t in tuned.model(x)]
    tuned.model.export_mode = False
    for a, b in zip(ours, reference):
        np.testing.assert_allclose(a, b, atol=1e-3)
    tuned.fit()
    assert load_checkpoint(tmp_path / "tuned" / "last.pt")["train_config"]["init"].endswith("base.onnx")
    with pytest.raises(ValueError, match="network"):
        Trainer(_config(tiny_coco, tmp_path / "wider", width=16, init=onnx_path))


def test_a_checkpoint_with_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="Weights only load failed|weights_only"):
        load_checkpoint(tmp_path / "evil.pt")


def _white_box() -> tuple[np.ndarray, np.ndarray]:
    """A white box on black and its one-instance mask stack."""
    image = np.zeros((64, 96, 3), np.uint8)
    image[10:30, 20:50] = 255
    masks = np.zeros((1, 64, 96), bool)
    masks[0, 10:30, 20:50] = True
    return image, masks


def test_augmentation_moves_masks_with_the_image_exactly():
    image, masks = _white_box()
    config = dataclasses.replace(AugmentConfig.off(), flip_lr=1.0)
    out, out_masks, classes = augment(image, masks, np.array([4]), np.random.default_rng(0), config)
    np.testing.assert_array_equal(out_masks[0], masks[0][:, ::-1])
    np.testing.assert_array_equal(out[..., 0] > 127, masks[0][:, ::-1])
    assert classes.tolist() == [4]
    # Scaled down hard, tiny instances disappear with their class.
    config = dataclasses.replace(AugmentConfig.off(), scale=(0.05, 0.05), min_pixels=12)
    _, out_masks, classes = augment(image, masks, np.array([4]), np.random.default_rng(0), config)
    assert len(out_masks) == 0 and len(classes) == 0


def test_every_augmentation_keeps_masks_on_the_pixels_of_their_object():
    """A bright square on a dark ground under each augmentation alone (full probability): its mask still marks
    pixels that are bright (geometry moved both alike; colour steps leave masks alone; a cut-out hole
    removes what it hides from the mask)."""
    image = np.full((96, 128, 3), 60, np.uint8)
    image[30:70, 40:100] = 230
    masks = np.zeros((1, 96, 128), bool)
    masks[0, 30:70, 40:100] = True
    full = {"flip_lr": 1.0, "flip_ud": 1.0, "scale": (0.6, 1.4), "aspect": 0.15, "degrees": 15.0, "shear": 4.0,
            "translate": 0.1, "perspective": 1.0, "cutout": 1.0}
    for name, value in full.items():
        config = dataclasses.replace(AugmentConfig.off(), **{name: value})
        for seed in range(4):
            out, out_masks, _ = augment(image, masks, np.array([1]), np.random.default_rng(seed), config)
            assert out.shape == image.shape and out.dtype == np.uint8 and out_masks.dtype == bool
            inside = out[..., 0][out_masks[0]]
            assert len(inside) >= 12 and np.mean(inside > 127) >= 0.97, (name, seed, np.mean(inside > 127))
    photometric = {"hsv": (0.03, 0.5, 0.4), "brightness_contrast": 1.0, "gamma": 1.0, "white_balance": 1.0,
                   "shadow": 1.0, "blur": 1.0, "motion_blur": 1.0, "noise": 1.0}
    for name, value in photometric.items():
        config = dataclasses.replace(AugmentConfig.off(), **{name: value})
        out, out_masks, _ = augment(image, masks, np.array([1]), np.random.default_rng(1), config)
        np.testing.assert_array_equal(out_masks, masks)  # colour never moves a mask
        assert not np.array_equal(out, image), name  # ... and each step does change the pixels


def test_copy_paste_puts_donor_instances_on_top_and_cuts_what_they_cover():
    image = np.full((64, 64, 3), 50, np.uint8)
    masks = np.zeros((1, 64, 64), bool)
    masks[0, 10:40, 10:40] = True
    donor_image = np.full((64, 64, 3), 200, np.uint8)
    donor_masks = np.zeros((1, 64, 64), bool)
    donor_masks[0, 30:50, 30:50] = True  # symmetric about the centre column: a mirror puts it at 14..34
    config = dataclasses.replace(AugmentConfig.off(), copy_paste=1.0)
    out, out_masks, classes = augment(image, masks, np.array([0]), np.random.default_rng(0), config,
                                      (donor_image, donor_masks, np.array([3])))
    assert classes.tolist() == [0, 3] and len(out_masks) == 2
    assert not (out_masks[0] & out_masks[1]).any()  # the pasted one hides what it covers
    np.testing.assert_array_equal(out[out_masks[1]][:, 0], 200)
    np.testing.assert_array_equal(out[out_masks[0]][:, 0], 50)
    assert (out_masks[0] | out_masks[1]).sum() >= masks.sum()


def test_augmentation_is_reproducible_from_the_rng():
    from robot_instseg.synthetic.scenes import generate_scene

    scene = generate_scene(3, 96, 128)
    image, masks = scene.render_rgb(), np.array(scene.visible_masks())
    classes = np.array([o.class_id for o in scene.objects])
    first = augment(image, masks, classes, np.random.default_rng(5), AugmentConfig(), (image, masks, classes))
    again = augment(image, masks, classes, np.random.default_rng(5), AugmentConfig(), (image, masks, classes))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


def test_loss_falls_when_overfitting_one_batch(tiny_coco, tmp_path):
    trainer = Trainer(_config(tiny_coco, tmp_path / "fit", lr=5e-3, warmup_iters=1))
    samples = [trainer.train_set[0], trainer.train_set[1]]
    off = AugmentConfig.off()
    losses = []
    for step in range(30):
        images, targets = make_batch(samples, np.random.default_rng(0), off, trainer.device)
        raw, protos = trainer.model(images)
        total, _ = trainer.loss(raw, protos, targets)
        trainer.optimizer.zero_grad()
        total.backward()
        trainer.optimizer.step()
        losses.append(float(total))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3]), losses


def test_evaluation_of_ground_truth_is_perfect_and_a_shift_costs_boundary_f1(tiny_coco):
    gt = load_coco_quiet(tiny_coco / "annotations.json")
    names = [c["name"] for c in sorted(gt.loadCats(gt.getCatIds()), key=lambda c: c["id"])]
    dets = {}
    for image_id in gt.getImgIds():
        anns = gt.loadAnns(gt.getAnnIds(imgIds=image_id))
        masks = np.stack([gt.annToMask(a).astype(bool) for a in anns])
        ids = [a["category_id"] - 1 for a in anns]
        dets[image_id] = Detections.from_full_masks(masks, [0.9] * len(anns), ids, [names[i] for i in ids])
    metrics = evaluate_detections(gt, dets, names)
    assert metrics["AP"] == pytest.approx(1.0) and metrics["boundary_f1@2px"] == pytest.approx(1.0)
    square = np.zeros((60, 60), bool)
    square[10:40, 10:40] = True
    assert boundary_f_measure(square, square, 2.0) == 1.0
    assert boundary_f_measure(np.roll(square, 2, axis=1), square, 2.0) == 1.0
    assert boundary_f_measure(np.roll(square, 4, axis=1), square, 2.0) < 0.8


def test_dataset_refuses_classes_it_was_not_given(tiny_coco):
    with pytest.raises(ValueError, match="not among the classes"):
        CocoSegDataset([DatasetSource(tiny_coco / "annotations.json", tiny_coco)], (96, 128), names=["cup"])


def test_augment_preview_writes_a_mosaic_of_augmented_samples_and_trains_nothing(tiny_coco, tmp_path):
    import shutil
    import subprocess

    import cv2

    exe = shutil.which("robot-instseg")
    args = [exe, "train", "--coco", str(tiny_coco / "annotations.json"), "--images", str(tiny_coco),
            "--imgsz", "96", "128", "--out", str(tmp_path / "run")]
    done = subprocess.run(args + ["--augment-preview", "5"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    mosaic = cv2.imread(str(tmp_path / "run" / "augment_preview.png"))
    assert mosaic.shape == (2 * 96, 3 * 128, 3)  # 5 tiles in a 3-column grid
    assert not (tmp_path / "run" / "last.pt").exists()
    tiles = [mosaic[r * 96:(r + 1) * 96, c * 128:(c + 1) * 128] for r, c in ((0, 0), (0, 1), (0, 2))]
    assert not np.array_equal(tiles[0], tiles[1]) and not np.array_equal(tiles[1], tiles[2])
    bad = subprocess.run(args + ["--augment-preview", "0"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "at least 1" in bad.stderr and "Traceback" not in bad.stderr


def test_auto_autocast_uses_bfloat16_only_where_the_cpu_runs_it_natively():
    from robot_instseg.train.runtime import autocast_dtype, cpu_has_bf16

    cpu = torch.device("cpu")
    assert autocast_dtype("auto", cpu) == (torch.bfloat16 if cpu_has_bf16() else None)
    assert autocast_dtype("bf16", cpu) == torch.bfloat16 and autocast_dtype("off", cpu) is None
    with pytest.raises(ValueError, match="amp must be"):
        autocast_dtype("fp8", cpu)


def test_basic_recipe_draws_as_before_and_flips_exactly(tiny_coco, tmp_path):
    """The bundled model's recipe (``--augment basic``): make_batch augments each sample in turn with
    ``basic_augment`` and draws nothing else from the rng (no copy-paste donor), as before issue 17."""
    from robot_instseg.train.augment_basic import BasicAugmentConfig, basic_augment

    trainer = Trainer(_config(tiny_coco, tmp_path / "basic", augment=BasicAugmentConfig()))
    samples = [trainer.train_set[i] for i in range(3)]
    images, _ = make_batch(samples, np.random.default_rng(4), BasicAugmentConfig(), trainer.device)
    rng = np.random.default_rng(4)
    expected = [basic_augment(s.image, s.masks, s.classes, rng, BasicAugmentConfig())[0] for s in samples]
    np.testing.assert_array_equal((images.permute(0, 2, 3, 1) * 255).round().byte().numpy(), np.stack(expected))
    image, masks = _white_box()
    flip = dataclasses.replace(BasicAugmentConfig.off(), flip_lr=1.0)
    out, out_masks, _ = basic_augment(image, masks, np.array([2]), np.random.default_rng(0), flip)
    np.testing.assert_array_equal(out_masks[0], masks[0][:, ::-1])
    assert trainer.config.describe()["augment"]["recipe"] == "basic"
