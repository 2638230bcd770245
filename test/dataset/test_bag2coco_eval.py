"""bag2coco and eval on real bags and real COCO files, checked with pycocotools and rosbags.

Bags are written by ``robot-instseg run`` (the node's converters and per-frame pipeline) from
synthetic scenes; their InstanceArrays are read back independently with rosbags and must be
exactly the masks bag2coco wrote as RLE.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from robot_instseg.dataset.bag2coco import assign_splits
from robot_instseg.dataset.bag_frames import instance_masks
from robot_instseg.dataset.mask_qa import mask_flags
from robot_instseg.synthetic.scenes import generate_scene

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cli_runner import cli  # noqa: E402


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("bags")
    out = []
    for seed in (11, 12, 13, 14, 15):
        bag = root / f"robot_{seed}"
        cli("run", f"scenes:{seed}", "--out", str(bag), "--quiet")
        out.append(bag)
    return out


def quiet_coco(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def recorded_instances(bag: Path) -> dict:
    from rosbags.highlevel import AnyReader

    with AnyReader([bag]) as reader:
        conns = [c for c in reader.connections if c.topic == "/seg_node/instances"]
        return {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in
                (reader.deserialize(d, c.msgtype) for c, _, d in reader.messages(connections=conns))}


def test_bag2coco_masks_splits_stats_and_mosaic(bags, tmp_path) -> None:
    out = tmp_path / "dataset"
    cli("bag2coco", *map(str, bags), "--out", str(out), "--quiet", "--no-model")
    stats = json.loads((out / "stats.json").read_text())
    seen_bags: dict[str, str] = {}
    total_images = 0
    for split in ("train", "val", "test"):
        path = out / "annotations" / f"instances_{split}.json"
        assert path.is_file(), split  # 5 bags at 0.8/0.1/0.1: every split gets a whole bag
        coco = quiet_coco(path)
        images = coco.loadImgs(coco.getImgIds())
        total_images += len(images)
        for image in images:
            assert seen_bags.setdefault(image["bag"], split) == split, f"{image['bag']} is in two splits"
            assert (out / "images" / split / image["file_name"]).is_file()
            msg = recorded_instances(next(b for b in bags if b.name == image["bag"]))[
                (image["stamp"]["sec"], image["stamp"]["nanosec"])]
            expected = [m for m in instance_masks(msg, image["height"], image["width"]) if m[3].any()]
            anns = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
            assert len(anns) == len(expected) > 0
            for ann, (class_id, name, score, mask, track_id) in zip(anns, expected):
                np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), mask)
                assert coco.loadCats(ann["category_id"])[0]["name"] == name
                assert ann["score"] == pytest.approx(score, abs=1e-5)
                assert ann["attributes"]["qa"] == mask_flags(mask)
                assert ann["track_id"] == ann["attributes"]["track_id"] == track_id  # as the node recorded it
    assert sorted(seen_bags) == sorted(b.name for b in bags)
    assert total_images == 5 * 8
    assert {s: sorted(v["bags"]) for s, v in stats["splits"].items()} == \
        {s: sorted(b for b, sp in seen_bags.items() if sp == s) for s in ("train", "val", "test")}
    mosaic = cv2.imread(str(out / "mosaic.png"))
    assert mosaic is not None and mosaic.shape == (4 * 240, 4 * 320, 3)


def test_stride_blur_and_duplicate_filters(tmp_path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    a, b, c = (generate_scene(seed, 480, 640).render_rgb() for seed in (21, 22, 23))
    frames = [a, a.copy(), cv2.GaussianBlur(b, (0, 0), 6), c, c, a, b, c]
    for i, rgb in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:02d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    bag = tmp_path / "bag_one"
    cli("run", str(folder), "--out", str(bag), "--quiet")
    out = tmp_path / "ds"
    cli("bag2coco", str(bag), "--out", str(out), "--quiet", "--no-model")
    (entry,) = json.loads((out / "stats.json").read_text())["bags"]
    assert entry["split"] == "train"  # one bag: nothing to split
    assert entry["skipped"] == {"stride": 0, "blurred": 1, "duplicate": 2, "undecodable": 0}
    assert entry["kept"] == 5
    out2 = tmp_path / "ds2"
    cli("bag2coco", str(bag), "--out", str(out2), "--quiet", "--no-model", "--stride", "2", "--dedup", "0",
        "--min-sharpness", "0")
    (entry,) = json.loads((out2 / "stats.json").read_text())["bags"]
    assert entry["skipped"]["stride"] == 4 and entry["kept"] == 4


def test_splits_are_by_whole_bags_and_deterministic() -> None:
    names = [Path(f"b{i}") for i in range(10)]
    split = assign_splits(names, (0.8, 0.1, 0.1), seed=3)
    assert sorted(split) == sorted(n.name for n in names)
    assert sorted(split.values()).count("train") == 8
    assert split == assign_splits(list(reversed(names)), (0.8, 0.1, 0.1), seed=3)
    assert set(assign_splits(names[:1], (0.8, 0.1, 0.1)).values()) == {"train"}
    with pytest.raises(ValueError):
        assign_splits([Path("x/a"), Path("y/a")], (1, 0, 0))


def direct_cocoeval(gt: COCO, results: list, iou_type: str, cat_ids=None) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(json.loads(json.dumps(results)))
        e = COCOeval(gt, dt, iou_type)
        if cat_ids is not None:
            e.params.catIds = cat_ids
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e.stats


def test_eval_matches_cocoeval_and_model_path_matches_pred_path(tmp_path) -> None:
    data = tmp_path / "gt"
    cli("scenes", "--out", str(data), "--count", "6", "--seed", "91", "--quiet")
    gt_file = data / "annotations.json"
    pred = tmp_path / "pred.json"
    cli("run", str(data / "images"), "--coco", str(gt_file), "--out", str(pred), "--conf", "0.01", "--quiet")
    report = json.loads(cli("eval", "--gt", str(gt_file), "--pred", str(pred), "--json"))
    gt = quiet_coco(gt_file)
    results = json.loads(pred.read_text())
    segm, bbox = direct_cocoeval(gt, results, "segm"), direct_cocoeval(gt, results, "bbox")
    assert report["segm_AP"] == pytest.approx(segm[0]) and report["segm_AP50"] == pytest.approx(segm[1])
    assert report["segm_AP75"] == pytest.approx(segm[2]) and report["bbox_AP"] == pytest.approx(bbox[0])
    assert 0.5 < report["segm_AP50"] <= 1.0 and 0.0 < report["boundary_f1"] <= 1.0
    for cat in gt.loadCats(gt.getCatIds()):
        alone = direct_cocoeval(gt, results, "segm", [cat["id"]])
        assert report["per_class"][cat["name"]]["segm_AP"] == pytest.approx(max(alone[0], 0.0)), cat["name"]
    assert set(report["mask_qa"]["predictions"]["counts"]) == {"tiny", "fragmented", "ragged"}
    # the ground truth as predictions is perfect, and the table form prints
    perfect = json.loads(cli("eval", "--gt", str(gt_file), "--pred", str(gt_file), "--json"))
    assert perfect["segm_AP"] == pytest.approx(1.0) and perfect["boundary_f1"] == pytest.approx(1.0)
    assert "boundary F1" in cli("eval", "--gt", str(gt_file), "--pred", str(pred))
    # --model --images gives the numbers of the saved predictions of the same model
    from_model = json.loads(cli("eval", "--gt", str(gt_file), "--images", str(data), "--json", "--quiet"))
    assert from_model["segm_AP"] == pytest.approx(report["segm_AP"], abs=0.02)


def test_mask_qa_flags() -> None:
    disc = np.zeros((100, 100), np.uint8)
    cv2.circle(disc, (50, 50), 30, 1, -1)
    assert mask_flags(disc.astype(bool)) == []
    assert "tiny" in mask_flags(np.pad(np.ones((5, 5), bool), 10))
    speckle = np.zeros((100, 100), bool)
    speckle[::8, ::8] = True
    assert "fragmented" in mask_flags(speckle)
    line = np.zeros((100, 200), bool)
    line[50:52, 10:190] = True
    assert "ragged" in mask_flags(line)
