"""A frame's 3D with the helper thread equals the one-thread result bit for bit (geometry.frame_3d)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from robot_instseg.engine.types import Detections
from robot_instseg.geometry import helper_thread as helper_module
from robot_instseg.geometry.depth_order import depth_occlusion
from robot_instseg.geometry.frame_3d import frame_3d
from robot_instseg.geometry.fusion import SPLIT_MIN_INSTANCES, fuse
from robot_instseg.synthetic.depth import render_depth, sensor_depth
from robot_instseg.synthetic.scenes import generate_scene, scene_seed

FIELDS = ("centroid", "extent", "box_center", "box_axes", "box_size", "points")


def _scenes(count: int):
    for index in range(count):
        scene = generate_scene(scene_seed(41, index), 240, 320)
        truth = render_depth(scene)
        masks = scene.visible_masks(scene.amodal_masks())
        detections = Detections.from_full_masks(np.array(masks), [0.9] * len(masks),
                                                [o.class_id for o in scene.objects])
        yield detections, sensor_depth(truth, scene.seed), truth.intrinsics


def _assert_same(a, b) -> None:
    assert a.reasons == b.reasons and a.occluded_by == b.occluded_by
    for x, y in zip(a.instances, b.instances, strict=True):
        assert (x is None) == (y is None)
        if x is not None:
            for name in FIELDS:
                assert np.array_equal(getattr(x, name), getattr(y, name)), name
            assert (x.valid_points, x.coverage, x.quaternion) == (y.valid_points, y.coverage, y.quaternion)


def test_helper_thread_gives_the_one_thread_result(monkeypatch) -> None:
    monkeypatch.setattr(helper_module, "usable_cores", lambda: 2)  # split even on a one-core runner
    seen = set()
    for detections, depth, k in _scenes(8):
        seen.add(len(detections) >= SPLIT_MIN_INSTANCES)
        one = fuse(detections, depth, k)
        one.occluded_by = depth_occlusion(detections, depth)
        for complete in (True, False):
            reference = one if complete else fuse(detections, depth, k, complete=False)
            if not complete:
                reference.occluded_by = one.occluded_by
            _assert_same(frame_3d(detections, depth, k, complete=complete), reference)
            _assert_same(frame_3d(detections, depth, k, complete=complete, parallel=False), reference)
    assert seen == {True}, "the scenes must have enough instances to be split"
    assert frame_3d(*next(_scenes(1)), order=False).occluded_by is None


def test_the_helper_is_one_kept_thread_and_none_on_one_core(monkeypatch) -> None:
    monkeypatch.setattr(helper_module, "usable_cores", lambda: 2)
    first = helper_module.helper_thread()
    assert first is not None and first is helper_module.helper_thread()
    names = set()
    first.submit(lambda: names.add(threading.current_thread().name)).result()
    assert names and next(iter(names)).startswith("frame_3d")
    monkeypatch.setattr(helper_module, "usable_cores", lambda: 1)
    assert helper_module.helper_thread() is None
    detections, depth, k = next(_scenes(1))
    _assert_same(frame_3d(detections, depth, k), frame_3d(detections, depth, k, parallel=False))


def test_work_the_busy_helper_has_not_started_is_done_here(monkeypatch) -> None:
    """A helper whose thread is taken (here: by a job that waits) never gets the order or its half of the
    surfaces: this thread takes them back, and the frame's 3D is still the one-thread result."""
    from concurrent.futures import ThreadPoolExecutor

    busy, release = ThreadPoolExecutor(max_workers=1), threading.Event()
    try:
        blocker = busy.submit(release.wait, 30)
        monkeypatch.setattr("robot_instseg.geometry.frame_3d.helper_thread", lambda: busy)
        for detections, depth, k in _scenes(3):
            _assert_same(frame_3d(detections, depth, k), frame_3d(detections, depth, k, parallel=False))
        assert not blocker.done()  # the helper was busy the whole time
    finally:
        release.set()
        busy.shutdown(wait=True)


def test_depth_not_at_the_image_size_is_refused_before_the_helper_reads_it(monkeypatch) -> None:
    submitted = []

    class Recording:
        def submit(self, *args):
            submitted.append(args)
            raise AssertionError("nothing may reach the helper")

    monkeypatch.setattr("robot_instseg.geometry.frame_3d.helper_thread", lambda: Recording())
    detections, depth, k = next(_scenes(1))
    with pytest.raises(ValueError, match="register them first"):
        frame_3d(detections, depth[:-8], k)
    assert submitted == []
