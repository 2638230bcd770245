"""Inputs cut into units read back exactly the frames the single-process readers yield, in the same order, so
whatever runs the units (here, or Ray workers) sees the same frames; unreadable inputs are named, not fatal."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from offline_inputs import clip_bag, image_folder, rgbd_bag

from robot_instseg.io.frame_sources import open_source
from robot_instseg.offline.unit_runner import UnitError, run_units
from robot_instseg.offline.work_units import expand_inputs, plan_units, unit_frames


def _frames(units) -> list:
    return [frame for unit in units for frame in unit_frames(unit)]


def _same_frames(a, b) -> None:
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert (x.name, x.stamp, x.timestamp_ns, x.topic) == (y.name, y.stamp, y.timestamp_ns, y.topic)
        if x.raw is not None:
            assert x.raw == y.raw
        else:
            assert np.array_equal(x.rgb, y.rgb)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inputs")
    clip_bag(root / "clip", 23, rate_hz=10.0)
    rgbd_bag(root / "rgbd", 3, skip_depth_of=1)
    image_folder(root / "imgs", 7)
    writer = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(11):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    return root


@pytest.mark.parametrize("window_s", [0.05, 0.35, 1.0, 100.0])
def test_bag_windows_hold_every_frame_once_in_bag_order(inputs, window_s) -> None:
    plan = plan_units([str(inputs / "clip")], window_s, 30.0)
    assert not plan.refused
    assert len(plan.units) == (1 if window_s >= 100 else int(np.ceil(2.2 / window_s + 1e-9)))
    assert plan.total_frames == 23
    _same_frames(_frames(plan.units), list(open_source(str(inputs / "clip"))))


@pytest.mark.parametrize("window_s", [0.1, 0.2, 10.0])
def test_folder_and_video_units_read_the_same_frames_as_one_reader(inputs, window_s) -> None:
    for name in ("imgs", "clip.avi"):
        plan = plan_units([str(inputs / name)], window_s, 10.0, workers=2)
        assert len(plan.units) > 1, name  # cut, also with a long window: each worker gets several
        _same_frames(_frames(plan.units), list(open_source(str(inputs / name))))


def test_a_bag_read_with_depth_is_one_unit_with_the_paired_frames(inputs) -> None:
    depth = "/camera/aligned_depth_to_color/image_raw"
    plan = plan_units([str(inputs / "rgbd")], 0.1, 30.0, "/camera/color/image_raw", depth)
    assert [u.kind for u in plan.units] == ["bag_depth"]
    whole = list(open_source(str(inputs / "rgbd"), "/camera/color/image_raw", depth_topic=depth))
    units = _frames(plan.units)
    _same_frames(units, whole)
    assert [f.depth_fields is not None for f in units] == [f.depth_fields is not None for f in whole] == \
        [True, False, True]


def test_a_damaged_input_is_named_and_the_others_are_planned(inputs, tmp_path) -> None:
    torn = tmp_path / "torn.mcap"
    torn.write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 64)
    plan = plan_units([str(inputs / "clip"), str(torn), str(tmp_path / "absent.mcap"), str(inputs / "imgs")],
                      1.0, 10.0)
    assert len(plan.refused) == 2
    assert "torn.mcap: not a readable bag" in plan.refused[0] and "absent.mcap: no such file" in plan.refused[1]
    assert {u.source for u in plan.units} == {0, 3}


def test_patterns_expand_sorted_and_an_empty_pattern_is_refused(inputs, tmp_path) -> None:
    for name in ("b", "a/c", "a/b"):
        (tmp_path / f"{name}.mcap").parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f"{name}.mcap").write_bytes(b"")
    assert expand_inputs([str(tmp_path / "**" / "*.mcap")]) == \
        [str(tmp_path / p) for p in ("a/b.mcap", "a/c.mcap", "b.mcap")]
    with pytest.raises(ValueError, match="matches no file"):
        expand_inputs([str(tmp_path / "*.db3")])


class _TornAfterTwo:
    """A job whose second unit tears after one item, as a bag cut short in the middle does."""

    def setup(self):
        return None

    def process(self, state, unit):
        yield f"{unit.seq}-first"
        if unit.seq == 1:
            raise OSError("truncated chunk")
        yield f"{unit.seq}-second"


def test_a_unit_that_tears_ends_in_a_unit_error_and_the_next_units_still_run(inputs) -> None:
    plan = plan_units([str(inputs / "clip")], 0.5, 30.0)
    items = [item for _, item, *_ in run_units(_TornAfterTwo(), plan.units[:3])]
    assert items[:3] == ["0-first", "0-second", "1-first"]
    assert isinstance(items[3], UnitError) and "truncated chunk" in items[3].message and items[3].unit == 1
    assert items[4:] == ["2-first", "2-second"]
