"""The whole objects reach every output of a model with the amodal head: run's COCO results and bags, and
bag2coco's pre-annotations (their amodal layer read back independently with rosbags)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from amodal_fixtures import grown_bundled_model  # noqa: E402
from cli_runner import cli  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return grown_bundled_model(tmp_path_factory.mktemp("model") / "amodal.onnx")


def _decode(rle: dict) -> np.ndarray:
    return mask_utils.decode({**rle, "counts": rle["counts"].encode()}).astype(bool)


def test_run_json_holds_whole_masks_that_contain_the_visible_ones(model: Path, tmp_path: Path) -> None:
    cli("run", "scenes:21", "--model", str(model), "--out", str(tmp_path / "out.json"), "--quiet")
    results = json.loads((tmp_path / "out.json").read_text())
    entries = results if isinstance(results, list) else results["annotations"]
    assert entries and all("amodal_segmentation" in e for e in entries)
    for entry in entries:
        whole, visible = _decode(entry["amodal_segmentation"]), _decode(entry["segmentation"])
        assert not np.any(visible & ~whole) and 0.0 <= entry["occlusion_rate"] < 1.0
        assert all(isinstance(k, int) and k != entry["instance_id"] for k in entry["occluded_by"])


def test_bag2coco_carries_the_recorded_whole_objects_as_their_own_layer(model: Path, tmp_path: Path) -> None:
    from rosbags.highlevel import AnyReader

    bag = tmp_path / "robot_21"
    cli("run", "scenes:21", "--model", str(model), "--out", str(bag), "--quiet")
    with AnyReader([bag]) as reader:
        conns = [c for c in reader.connections if c.topic == "/seg_node/instances"]
        recorded = [reader.deserialize(d, c.msgtype) for c, _, d in reader.messages(connections=conns)]
    assert recorded and all(inst.has_amodal for msg in recorded for inst in msg.instances)
    cli("bag2coco", str(bag), "--out", str(tmp_path / "ds"), "--split", "1,0,0", "--image-format", "png",
        "--min-sharpness", "0", "--dedup", "0", "--quiet")
    doc = json.loads((tmp_path / "ds" / "annotations" / "instances_train.json").read_text())
    frames = {(i["stamp"]["sec"], i["stamp"]["nanosec"]): i["id"] for i in doc["images"]}
    checked = 0
    for msg in recorded:
        image_id = frames[(msg.header.stamp.sec, msg.header.stamp.nanosec)]
        anns = [a for a in doc["annotations"] if a["image_id"] == image_id]
        by_instance = {a["instance_id"]: a for a in anns}
        for inst in msg.instances:
            ann = by_instance[inst.id]
            m = inst.amodal_mask
            crop = np.frombuffer(bytes(m.data), np.uint8).reshape(m.height, m.step)[:, :m.width] > 0
            whole = _decode(ann["amodal_segmentation"])
            x, y = inst.amodal_bbox.x_offset, inst.amodal_bbox.y_offset
            np.testing.assert_array_equal(whole[y:y + m.height, x:x + m.width], crop)
            assert whole.sum() == crop.sum() == ann["amodal_area"]
            assert ann["occluded_by"] == [by_instance[k]["id"] for k in inst.occluded_by]
            checked += 1
    assert checked >= 5


def test_run_reads_the_order_from_depth_for_a_model_without_the_head(tmp_path: Path) -> None:
    """Synthetic scenes carry depth: the bundled model (no head) gets occluded_by from it, the same in run's
    COCO results and in its bag's InstanceArrays, as the node publishes it (geometry.depth_order)."""
    from rosbags.highlevel import AnyReader

    cli("run", "scenes:21", "--out", str(tmp_path / "out.json"), "--quiet")
    entries = json.loads((tmp_path / "out.json").read_text())
    assert entries and all("amodal_segmentation" not in e for e in entries)
    from_json: dict[int, dict[int, list[int]]] = {}
    for entry in entries:
        from_json.setdefault(entry["image_id"], {})[entry["instance_id"]] = entry["occluded_by"]
    cli("run", "scenes:21", "--out", str(tmp_path / "bag"), "--quiet")
    with AnyReader([tmp_path / "bag"]) as reader:
        conns = [c for c in reader.connections if c.topic == "/seg_node/instances"]
        recorded = [reader.deserialize(d, c.msgtype) for c, _, d in reader.messages(connections=conns)]
    assert len(recorded) == len(from_json)
    for image_id, msg in enumerate(recorded, start=1):
        assert all(inst.has_3d for inst in msg.instances[:1]) and not any(i.has_amodal for i in msg.instances)
        assert {inst.id: [int(k) for k in inst.occluded_by] for inst in msg.instances} == from_json[image_id]
    assert sum(len(v) for frame in from_json.values() for v in frame.values()) >= 3
