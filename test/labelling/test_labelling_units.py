"""The labelling helpers on their own: brush and polygon regions, labelling configs, provenance,
the review report, the temporal QA flag, dataset merge and a bag's custom data."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from robot_instseg.dataset.bag_frames import bag_custom_data, rle_of
from robot_instseg.dataset.dataset_files import DatasetFolderError
from robot_instseg.dataset.mask_qa import TemporalCheck
from robot_instseg.dataset.merge import merge_datasets
from robot_instseg.labelling.brush import region, region_label, region_mask, rle_to_mask
from robot_instseg.labelling.errors import LabellingError
from robot_instseg.labelling.label_config import label_config
from robot_instseg.labelling.label_config_read import config_classes
from robot_instseg.labelling.provenance import Region, compare
from robot_instseg.labelling.review_report import format_review, review_report


def disc(h: int, w: int, cx: int, cy: int, r: int, hole: int = 0) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    cv2.circle(m, (cx, cy), r, 1, -1)
    if hole:
        cv2.circle(m, (cx, cy), hole, 0, -1)
    return m > 0


def test_brush_region_round_trip_keeps_holes_and_refuses_another_size() -> None:
    mask = disc(48, 64, 30, 20, 15, hole=5)
    r = region(mask, "cup", "a1", 0.87654321)
    assert r["type"] == "brushlabels" and r["score"] == 0.87654 and (r["original_height"], r["original_width"]) == (48, 64)
    assert region_label(r) == "cup" and np.array_equal(region_mask(r, 48, 64), mask)
    with pytest.raises(LabellingError) as err:
        rle_to_mask(r["value"]["rle"], 40, 64)
    assert err.value.reason == "format"


def test_polygon_region_is_the_outer_contour() -> None:
    mask = disc(100, 120, 60, 50, 30, hole=10)
    back = region_mask(region(mask, "bowl", "p", kind="polygon"), 100, 120)
    filled = disc(100, 120, 60, 50, 30)
    assert (back & filled).sum() / (back | filled).sum() > 0.95  # the hole is lost: polygons are outlines


def test_label_config_lists_every_class_and_reads_back() -> None:
    names = ["cup", 'odd "name" & <x>', "tool"]
    config = label_config(names)
    assert config_classes(config) == names and "<BrushLabels" in config
    assert "<PolygonLabels" in label_config(names, "polygon")
    with pytest.raises(LabellingError):
        label_config(names, "ellipse")
    with pytest.raises(LabellingError):
        config_classes("<View><Image name='image' value='$image'/></View>")


def test_provenance_by_id_then_by_overlap() -> None:
    a, b, c, d = (disc(60, 80, x, 30, 9) for x in (10, 30, 50, 70))
    predicted = [Region("p1", "cup", a), Region("p2", "cup", b), Region("p3", "box", c), Region("p4", "can", d)]
    grown = cv2.dilate(c.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    reviewed = [Region("p1", "cup", a), Region("p2", "bowl", b), Region("new", "box", grown),
                Region("added", "tool", disc(60, 80, 40, 50, 5))]
    out = {(o.reviewed or o.predicted).region_id: o for o in compare(predicted, reviewed)}
    assert out["p1"].provenance == "accepted" and out["p1"].iou_to_prediction == 1.0
    assert out["p2"].provenance == "corrected" and out["p2"].class_changed
    assert out["new"].provenance == "corrected" and out["new"].predicted.region_id == "p3"
    assert 0.5 < out["new"].iou_to_prediction < 1.0
    assert out["added"].provenance == "added" and out["added"].predicted is None
    assert out["p4"].provenance == "deleted" and out["p4"].reviewed is None
    report = review_report([(o, {"qa": ["ragged"]} if o.predicted and o.predicted.region_id == "p3" else {})
                            for o in out.values()], {"reviewed": 1})
    assert report["per_class"]["cup"] == {"predicted": 2, "accepted": 1, "corrected": 1, "deleted": 0, "added": 0,
                                          "class_changed": 1, "mean_iou_of_corrected": 1.0, "changed_share": 0.5}
    assert report["per_class"]["can"]["deleted"] == 1 and report["per_class"]["can"]["changed_share"] == 1.0
    assert report["qa_flags"]["ragged"] == {"flagged": 1, "accepted": 0, "corrected": 1, "deleted": 0}
    assert report["most_changed_classes"][:2] in (["can", "box"], ["box", "can"])
    assert "cup" in format_review(report)


def test_temporal_flag_wants_a_still_box_and_a_jumping_mask() -> None:
    check = TemporalCheck()
    full = np.zeros((50, 50), bool)
    full[10:40, 10:40] = True
    frame_edge = full.copy()
    frame_edge[12:38, 12:38] = False  # same box, a ring now: the mask jumped
    moved = np.zeros((50, 50), bool)
    moved[20:50, 20:50] = True
    assert check.update([(1, full), (2, full), (0, full)]) == set()
    assert check.update([(1, frame_edge), (2, moved), (0, frame_edge)]) == {1}  # 2 moved; 0 untracked
    assert check.update([(1, frame_edge)]) == set()


def write_set(root: Path, split: str, images: list[dict], cats: list[str]) -> None:
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    anns = []
    for i, image in enumerate(images, 1):
        image.update(id=i, width=8, height=6)
        cv2.imwrite(str(root / "images" / split / image["file_name"]), np.full((6, 8, 3), i, np.uint8))
        m = np.zeros((6, 8), bool)
        m[1:3, 1:4] = True
        anns.append({"id": i, "image_id": i, "category_id": len(cats), "segmentation": rle_of(m), "area": 6.0,
                     "bbox": [1, 1, 3, 2], "iscrowd": 0})
    cat_list = [{"id": k + 1, "name": n} for k, n in enumerate(cats)]
    (root / "annotations" / f"instances_{split}.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": cat_list}))


def test_merge_joins_classes_by_name_keeps_bags_whole_and_refuses_a_frame_twice(tmp_path) -> None:
    stamp = {"sec": 1, "nanosec": 5}
    write_set(tmp_path / "a", "train", [{"file_name": "x.jpg", "bag": "b1", "topic": "/cam", "stamp": stamp}],
              ["cup", "box"])
    write_set(tmp_path / "b", "val", [{"file_name": "y.jpg", "bag": "b1", "topic": "/cam",
                                       "stamp": {"sec": 2, "nanosec": 0}},
                                      {"file_name": "z.jpg", "bag": "b2", "topic": "/cam", "stamp": stamp}],
              ["tool"])
    summary = merge_datasets([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    assert summary["train"]["images"] == 2 and summary["val"]["images"] == 1  # y.jpg follows its bag b1 to train
    train = json.loads((tmp_path / "m" / "annotations" / "instances_train.json").read_text())
    names = {c["id"]: c["name"] for c in train["categories"]}
    assert list(names.values()) == ["cup", "box", "tool"]
    assert [names[a["category_id"]] for a in train["annotations"]] == ["box", "tool"]
    assert [i["merged_from"] for i in train["images"]] == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert (tmp_path / "m" / "images" / "train" / "y.jpg").is_file()
    write_set(tmp_path / "c", "train", [{"file_name": "again.jpg", "bag": "b1", "topic": "/cam", "stamp": stamp}],
              ["cup"])
    with pytest.raises(DatasetFolderError, match="again.jpg .* is in both") as err:
        merge_datasets([tmp_path / "a", tmp_path / "c"], tmp_path / "bad")
    assert err.value.reason == "duplicate"


def test_bag_custom_data_from_metadata_or_sidecar(tmp_path) -> None:
    (tmp_path / "metadata.yaml").write_text(
        "rosbag2_bagfile_information:\n  custom_data:\n    robot_instseg.model: /m/a.onnx\n")
    assert bag_custom_data(tmp_path) == {"robot_instseg.model": "/m/a.onnx"}
    (tmp_path / "metadata.yaml").unlink()
    (tmp_path / "robot_instseg.json").write_text(json.dumps({"custom_data": {"robot_instseg.model": "/m/b.onnx"}}))
    assert bag_custom_data(tmp_path / "x.mcap") == {"robot_instseg.model": "/m/b.onnx"}
    assert bag_custom_data(tmp_path / "nothing" / "y.mcap") == {}
