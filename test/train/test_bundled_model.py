"""The bundled default model, on synthetic scenes from a seed never used in training (scenes of
seeds 101, 102 and 103 and clips of seeds 4242000-4242199, which the clip generator derives from
``--seed 4242``: other scenes than ``scenes --seed 4242``; validation 201): COCO segm AP50 >= 0.85,
checked with COCOeval."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from ros_env import REPO

from robot_instseg.dataset.model_eval import evaluate_model
from robot_instseg.engine import Segmenter, SegmenterConfig
from robot_instseg.engine.model_paths import DEFAULT_MODEL_NAME, default_model_path
from robot_instseg.synthetic.dataset import write_dataset
from robot_instseg.synthetic.scenes import CLASSES

UNSEEN_SEED = 4242


def test_bundled_model_is_small_and_carries_ultralytics_metadata() -> None:
    path = default_model_path()
    assert path == REPO / "models" / DEFAULT_MODEL_NAME
    assert path.stat().st_size <= 15 * 1024 * 1024
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    assert meta["task"] == "segment" and meta["stride"] == "32" and "imgsz" in meta
    assert eval(meta["names"], {}) == dict(enumerate(CLASSES))  # noqa: S307 (a literal we wrote)
    assert (REPO / "models" / "instseg_tabletop.txt").read_text().split() == list(CLASSES)
    assert (REPO / "models" / "MODEL_CARD.md").is_file()


@pytest.fixture(scope="module")
def unseen_scenes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("unseen")
    write_dataset(out, count=50, seed=UNSEEN_SEED)
    return out


def test_bundled_model_accuracy_on_unseen_scenes(unseen_scenes: Path) -> None:
    segmenter = Segmenter(default_model_path(), SegmenterConfig(score_threshold=0.01))
    metrics = evaluate_model(segmenter, unseen_scenes / "annotations.json", unseen_scenes)
    assert metrics["images"] == 50
    assert metrics["AP50"] >= 0.85, metrics
