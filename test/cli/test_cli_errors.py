"""Bad input to the CLI: one line on stderr naming the input, a distinct exit code, no traceback,
and no output that looks complete (issue: "no single frame, parameter or file can stop ...")."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

EXE = shutil.which("robot-instseg")
EXIT_INPUT, EXIT_NOTHING = 2, 3


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    assert EXE, "robot-instseg is not on PATH (source scripts/env.sh)"
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def _refused(result: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The last stderr line is the one error line; no traceback anywhere."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("robot-instseg "), line
    for needle in needles:
        assert needle in line, line
    return line


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A scratch folder with a 2-scene COCO dataset and a 2-frame bag."""
    root = tmp_path_factory.mktemp("cli_errors")
    assert _run("scenes", "--out", "sc", "--count", "2", "--seed", "5", "--quiet", cwd=root).returncode == 0
    assert _run("run", "scenes:3", "--out", "good", "--quiet", cwd=root).returncode == 0
    return root


def test_run_refuses_an_empty_folder_and_a_folder_of_unreadable_images(work: Path) -> None:
    (work / "empty").mkdir(exist_ok=True)
    _refused(_run("run", "empty", "--out", "p.json", cwd=work), EXIT_INPUT, "empty: no images")
    bad = work / "bad"
    bad.mkdir(exist_ok=True)
    (bad / "a.png").write_text("not a png")
    (bad / "b.jpg").write_bytes(b"\xff\xd8 nope")
    result = _run("run", "bad", "--out", "p.json", "--quiet", cwd=work)
    _refused(result, EXIT_NOTHING, "no frame could be segmented (2 skipped", "a.png")
    assert "skipped b.jpg" in result.stderr and not (work / "p.json").exists()


def test_run_names_skipped_images_and_still_writes_the_good_ones(work: Path) -> None:
    mixed = work / "mixed"
    mixed.mkdir(exist_ok=True)
    shutil.copy(work / "sc" / "images" / sorted(p.name for p in (work / "sc" / "images").iterdir())[0], mixed)
    (mixed / "zz_broken.png").write_text("not a png")
    result = _run("run", "mixed", "--out", "m.json", "--quiet", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "skipped zz_broken.png" in result.stderr and "(1 skipped)" in result.stdout
    assert isinstance(json.loads((work / "m.json").read_text()), list)


def test_run_and_bag2coco_refuse_a_truncated_bag_without_output(work: Path) -> None:
    whole = next((work / "good").glob("*.mcap"))
    (work / "trunc.mcap").write_bytes(whole.read_bytes()[:3000])
    _refused(_run("run", "trunc.mcap", "--out", "t.json", cwd=work), EXIT_INPUT, "trunc.mcap: not a readable bag",
             "bag repair")
    _refused(_run("bag2coco", "trunc.mcap", "--out", "ds", "--no-model", cwd=work), EXIT_INPUT, "not a readable bag")
    assert not (work / "t.json").exists() and not (work / "ds").exists()


def test_run_out_mcap_writes_one_bag_file_named_as_asked(work: Path) -> None:
    result = _run("run", "scenes:1", "--out", "one.mcap", "--quiet", cwd=work)
    assert result.returncode == 0, result.stderr
    assert (work / "one.mcap").is_file() and not list(work.glob(".one.mcap.partial*"))
    back = _run("run", "one.mcap", "--out", "one.json", "--quiet", cwd=work)  # and it reads back as a bag
    assert back.returncode == 0, back.stderr
    _refused(_run("run", "scenes:1", "--out", "one.mcap", cwd=work), EXIT_INPUT, "exists")


def _coco_variant(work: Path, name: str, change) -> str:
    doc = json.loads((work / "sc" / "annotations.json").read_text())
    change(doc)
    (work / name).write_text(json.dumps(doc))
    return name


@pytest.mark.parametrize("name, change, needle", [
    ("poly.json", lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3]]), "polygon"),
    ("strseg.json", lambda d: d["annotations"][0].update(segmentation="abc"), "segmentation of type str"),
    ("cat.json", lambda d: d["annotations"][0].update(category_id=999), "unknown category_id"),
    ("box.json", lambda d: [a.update(bbox=[-500, -500, 99999, 99999]) for a in d["annotations"]], "leaves its image"),
    ("schema.json", lambda d: d.update(images=5), "'images' is missing or not a list"),
])
def test_train_and_eval_refuse_malformed_coco_with_counts(work: Path, name, change, needle) -> None:
    coco = _coco_variant(work, name, lambda d: change(d))
    line = _refused(_run("train", "--coco", coco, "--images", "sc", "--out", f"tr_{name}", "--epochs", "1",
                         "--max-iters", "1", "--quiet", cwd=work), EXIT_INPUT, name, needle)
    assert not (work / f"tr_{name}").exists(), line
    _refused(_run("eval", "--gt", coco, "--pred", coco, cwd=work), EXIT_INPUT, needle)


def test_train_init_refuses_a_missing_or_foreign_checkpoint_in_one_line(work: Path) -> None:
    common = ("train", "--coco", "sc/annotations.json", "--images", "sc", "--epochs", "1", "--max-iters", "1",
              "--quiet")
    _refused(_run(*common, "--out", "tr_none", "--init", "missing.pt", cwd=work), EXIT_INPUT, "--init", "missing.pt")
    assert not (work / "tr_none").exists()
    assert _run(*common, "--out", "tr_base", "--width", "8", "--imgsz", "64", cwd=work).returncode == 0
    _refused(_run(*common, "--out", "tr_wide", "--init", "tr_base/best.pt", cwd=work), EXIT_INPUT, "--init",
             "network")
    assert not (work / "tr_wide").exists()


def test_malformed_json_is_one_line(work: Path) -> None:
    (work / "broken.json").write_text('{"images": [')
    _refused(_run("eval", "--gt", "broken.json", "--pred", "broken.json", cwd=work), EXIT_INPUT,
             "broken.json: not JSON")
    _refused(_run("train", "--coco", "broken.json", "--images", "sc", "--out", "tr_broken", cwd=work), EXIT_INPUT,
             "broken.json: not JSON")


def test_verbose_shows_the_traceback(work: Path) -> None:
    result = _run("-v", "eval", "--gt", "broken.json", "--pred", "broken.json", cwd=work)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_3d_and_tracking_verbs_refuse_bad_arguments_in_one_line(work: Path) -> None:
    _refused(_run("eval", "--track", "--gt", "sc/annotations.json", "--images", "sc", cwd=work), EXIT_INPUT,
             "no video_id", "scenes --sequence")
    _refused(_run("eval", "--track", "--gt", "sc/annotations.json", "--images", "sc", "--track-high-score", "1.5",
                  cwd=work), EXIT_INPUT, "--track-high-score must be within 0..1, got 1.5")
    _refused(_run("eval3d", "--scenes", "0", cwd=work), EXIT_INPUT, "--scenes must be at least 1")
    _refused(_run("scenes", "--out", "mv", "--count", "1", "--seed", "1", "--min-visible", "1.5", cwd=work),
             EXIT_INPUT, "--min-visible must be a fraction from 0 to 1, got 1.5")
    _refused(_run("scenes", "--out", "mv", "--count", "1", "--seed", "1", "--sequence", "--min-visible", "0.1",
                  cwd=work), EXIT_INPUT, "--min-visible applies to scenes")
    assert not (work / "mv").exists()
    _refused(_run("run", "sc/images", "--depth-topic", "/camera/depth", "--out", "d.json", cwd=work), EXIT_INPUT,
             "--depth-topic needs a bag input")
    _refused(_run("run", "good", "--depth-topic", "/nope", "--out", "d.mcap", cwd=work), EXIT_INPUT,
             "no depth topic /nope")
    assert not (work / "d.json").exists() and not (work / "d.mcap").exists()


def test_train_refuses_a_negative_amodal_margin_in_one_line(work: Path) -> None:
    _refused(_run("train", "--coco", "sc/annotations.json", "--images", "sc", "--out", "tr_margin", "--amodal",
                  "--amodal-margin", "-0.5", "--epochs", "1", "--max-iters", "1", "--quiet", cwd=work), EXIT_INPUT,
             "--amodal-margin", "-0.5")
    assert not (work / "tr_margin").exists()
