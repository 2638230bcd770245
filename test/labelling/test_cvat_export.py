"""bag2coco --cvat read by datumaro (the library CVAT's import runs on, in its own venv):
every mask, class and attribute arrives, and writing it back in CVAT format drops nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from robot_instseg.dataset.cvat_export import cvat_rle
from robot_instseg.dataset.mask_qa import ALL_FLAGS

REPO = Path(__file__).resolve().parents[2]
DATUMARO = REPO / ".venv-datumaro" / "bin" / "python"


def test_cvat_rle_runs_over_the_box_row_by_row_zeros_first() -> None:
    mask = np.zeros((6, 8), bool)
    mask[1, 2:5] = True
    mask[2, 2] = mask[2, 4] = True  # a hole at (2, 3)
    rle, left, top, width, height = cvat_rle(mask)
    assert (left, top, width, height) == (2, 1, 3, 2)
    assert rle == "0,4,1,1"  # 1 1 1 / 1 0 1: starts with ones, so a zero-length run of zeros first
    rebuilt = np.repeat(np.arange(4) % 2, [0, 4, 1, 1]).reshape(height, width).astype(bool)
    assert np.array_equal(rebuilt, mask[1:3, 2:5])


def test_datumaro_reads_every_mask_and_attribute(dataset) -> None:
    if not DATUMARO.exists():
        pytest.skip(f"{DATUMARO} missing: run 'make label-tools' (datumaro in its own venv)")
    done = subprocess.run([str(DATUMARO), str(REPO / "scripts" / "check_cvat_export.py"),
                           str(dataset / "cvat" / "annotations.xml")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    wanted = {"score", "track_id", *(f"qa_{f}" for f in ALL_FLAGS)}
    assert seen["declared"] and all(set(attrs) >= wanted for attrs in seen["declared"].values())
    assert seen["import_warnings"] == [] and seen["export_warnings"] == []
    expected = []
    for split in ("train", "val"):
        coco = json.loads((dataset / "annotations" / f"instances_{split}.json").read_text())
        names = {c["id"]: c["name"] for c in coco["categories"]}
        images = {i["id"]: Path(i["file_name"]).stem for i in coco["images"]}
        for a in coco["annotations"]:
            x, y, w, h = mask_utils.toBbox(a["segmentation"])
            expected.append((images[a["image_id"]], names[a["category_id"]], int(mask_utils.area(a["segmentation"])),
                             [int(x), int(y), int(x + w), int(y + h)], a["score"], a["track_id"],
                             sorted(a["attributes"]["qa"])))
    got = [(m["image"], m["label"], m["area"], m["box"], m["attributes"]["score"], int(m["attributes"]["track_id"]),
            sorted(f for f in ALL_FLAGS if m["attributes"][f"qa_{f}"])) for m in seen["masks"]]
    assert len(got) == len(expected) > 100
    for g, e in zip(sorted(got, key=str), sorted(expected, key=str)):
        assert g[:4] == e[:4] and g[4] == pytest.approx(e[4], abs=1e-5) and g[5:] == e[5:]
