"""Domain randomisation and the held-out look: seeded, varied, masks still exact, and the default look untouched."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from robot_instseg.synthetic.scenes import generate_scene, scene_seed
from robot_instseg.synthetic.style import BACKGROUNDS, HELDOUT_BACKGROUNDS, draw_style


def test_styles_are_seeded_and_varied_and_heldout_shares_nothing_with_training() -> None:
    assert draw_style("default", 3) is None
    assert draw_style("randomised", 3) == draw_style("randomised", 3)
    randomised = [draw_style("randomised", s) for s in range(60)]
    heldout = [draw_style("heldout", s) for s in range(60)]
    assert len({s.background for s in randomised}) == len(BACKGROUNDS)
    assert len({round(s.tint[0], 3) for s in randomised}) > 50 and any(s.motion_blur for s in randomised)
    assert {s.background for s in heldout} == set(HELDOUT_BACKGROUNDS)
    assert not {s.background for s in heldout} & set(BACKGROUNDS)


def test_a_style_changes_pixels_and_proportions_not_the_objects_drawn() -> None:
    default, styled = generate_scene(41, 240, 320), generate_scene(41, 240, 320, style="randomised")
    assert default.style is None and styled.style is not None
    assert default.render_rgb().shape == styled.render_rgb().shape == (240, 320, 3)
    assert not np.array_equal(default.render_rgb(), styled.render_rgb())
    assert np.array_equal(styled.render_rgb(), generate_scene(41, 240, 320, style="randomised").render_rgb())


def test_styled_masks_are_still_the_visible_pixels() -> None:
    for style in ("randomised", "heldout"):
        for seed in range(6):
            scene = generate_scene(seed, 240, 320, style=style)
            ids = scene.render_ids()
            for index, mask in enumerate(scene.visible_masks()):
                np.testing.assert_array_equal(mask, ids == index + 1)
                assert mask.sum() >= 150


def test_scenes_cli_writes_the_style_into_plain_coco(tmp_path: Path) -> None:
    exe = shutil.which("robot-instseg")
    done = subprocess.run([exe, "scenes", "--out", str(tmp_path / "h"), "--count", "3", "--seed", "9",
                           "--style", "heldout", "--width", "320", "--height", "240", "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads((tmp_path / "h/annotations.json").read_text())
    assert doc["info"]["style"] == "heldout"
    coco = COCO(str(tmp_path / "h/annotations.json"))
    scene = generate_scene(scene_seed(9, 0), 240, 320, style="heldout")
    anns = coco.loadAnns(coco.getAnnIds(imgIds=1))
    assert len(anns) == len(scene.objects)
    np.testing.assert_array_equal(coco.annToMask(anns[0]).astype(bool), scene.visible_masks()[0])
    bad = subprocess.run([exe, "scenes", "--out", str(tmp_path / "x"), "--count", "1", "--seed", "1",
                          "--style", "photoreal"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
