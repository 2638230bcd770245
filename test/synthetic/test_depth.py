"""Synthetic depth: consistent with the occlusion order, in range, and fused to the truth."""

from __future__ import annotations

import numpy as np

from robot_instseg.dataset.depth_eval import evaluate_depth_fusion
from robot_instseg.synthetic.depth import depth_png, render_depth, sensor_depth
from robot_instseg.synthetic.scenes import generate_scene, scene_seed


def test_depth_agrees_with_the_painters_order_and_lies_in_range() -> None:
    for index in range(6):
        scene = generate_scene(scene_seed(11, index))
        truth = render_depth(scene)
        ids = scene.render_ids()
        for i, surface in enumerate(truth.surfaces):
            seen = ids == i + 1
            np.testing.assert_array_equal(truth.depth[seen], surface[seen])  # the drawn object is the nearest
            for earlier in truth.surfaces[:i]:
                both = np.isfinite(surface) & np.isfinite(earlier)
                assert (surface[both] < earlier[both]).all()  # later objects are in front where they overlap
        objects = np.isin(ids, np.arange(1, len(scene.objects) + 1))
        assert 0.4 <= truth.depth[objects].min() and truth.depth[objects].max() <= 1.5


def test_sensor_depth_is_seeded_and_round_trips_as_millimetres() -> None:
    scene = generate_scene(scene_seed(11, 0))
    truth = render_depth(scene)
    a, b = sensor_depth(truth, 5), sensor_depth(truth, 5)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_array_equal(np.nan_to_num(a), np.nan_to_num(b))
    assert 0.005 < np.isnan(a).mean() < 0.15  # holes and edge shadows, not a blank image
    png = depth_png(a)
    assert png.dtype == np.uint16 and (png[np.isnan(a)] == 0).all()
    np.testing.assert_allclose(png[~np.isnan(a)] / 1000.0, a[~np.isnan(a)], atol=5e-4)


def test_true_masks_on_clean_depth_give_the_true_centroid_within_2_mm() -> None:
    summary = evaluate_depth_fusion(8, seed=21, artefacts=False).summary()
    assert summary["matched"] == summary["gt_instances"] >= 60 and summary["without_3d"] == 0
    assert summary["centroid_error_mm"]["median"] <= 2.0
    assert summary["long_axis_within_10deg"] >= 0.9


def test_with_sensor_artefacts_ours_beats_the_plain_mean() -> None:
    summary = evaluate_depth_fusion(8, seed=22, artefacts=True).summary()
    ours, naive = summary["centroid_error_mm"], summary["naive_centroid_error_mm"]
    assert ours["median"] <= 10.0 and ours["p95"] <= 30.0
    assert naive["p95"] >= 1.5 * ours["p95"]


def test_scenes_dataset_with_depth_png_and_intrinsics(tmp_path) -> None:
    import json

    import cv2
    from pycocotools.coco import COCO

    from robot_instseg.synthetic.dataset import write_dataset

    path = write_dataset(tmp_path, 2, seed=3, depth=True)
    coco = COCO(str(path))  # extra keys leave it a valid COCO file
    for info in json.loads(path.read_text())["images"]:
        depth = cv2.imread(str(tmp_path / info["depth_file"]), cv2.IMREAD_UNCHANGED)
        truth = cv2.imread(str(tmp_path / info["depth_truth_file"]), cv2.IMREAD_UNCHANGED)
        assert depth.dtype == np.uint16 and depth.shape == (info["height"], info["width"])
        assert (truth > 0).all() and 400 <= truth.min() and truth.max() <= 1500  # millimetres, table included
        assert 0.0 < (depth == 0).mean() < 0.15
        scene = generate_scene(scene_seed(3, info["id"] - 1))
        np.testing.assert_allclose(truth / 1000.0, render_depth(scene).depth, atol=5e-4)
        assert info["intrinsics"]["fx"] > 0 and len(coco.getAnnIds(imgIds=[info["id"]])) == len(scene.objects)
