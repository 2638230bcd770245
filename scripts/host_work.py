"""Host work per frame against the raw ``session.run``, measured in one interleaved run (issue 28's budget).

Everything the node does for a frame except ``session.run``: preprocess, decode, overlap ownership,
depth fusion (with completion and the occlusion order from depth), tracking and message conversion
(InstanceArray, labels, markers), on the bundled model (or --model), 640x480 synthetic RGB-D scenes of a tracked clip, depth and tracking on.
Each run times the bare ``session.run`` on the same tensor right beside the pipeline, so the ratio
survives a shared, drifting machine. ``--profile N`` prints the N costliest functions (cProfile).

    python scripts/host_work.py [--model M] [--runs 120] [--objects 12] [--json] [--profile 25] [--no-spin]
                                [--one-thread] [--no-order]

With a core to spare (the node's way), the 3D runs the depth order and half of the surfaces on a helper
thread: the "fusion" column then holds both, and "depth_order" is 0.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time

import numpy as np

STAGES = ("raw_session", "preprocess", "decode", "ownership", "fusion", "depth_order", "tracking", "messages")


def _clip_frames(objects: int, count: int):
    """A tracked clip: RGB, sensor depth and intrinsics per frame, stamps 1/15 s apart."""
    from robot_instseg.synthetic.depth import render_depth, sensor_depth
    from robot_instseg.synthetic.sequences import generate_clip

    frames = []
    for frame in generate_clip(2028, count, objects):
        truth = render_depth(frame.scene)
        frames.append((frame.scene.render_rgb(), sensor_depth(truth, frame.scene.seed), truth.intrinsics,
                       frame.stamp_s))
    return frames


def measure(model, runs: int, objects: int, profile: int = 0, markers: bool = True, spin: bool = True,
            parallel: bool = True, order: bool = True) -> dict:
    from std_msgs.msg import Header

    from robot_instseg.engine.backends import BackendConfig
    from robot_instseg.engine.frame_pipeline import resolved
    from robot_instseg.engine.segmenter import SegmenterConfig, load_segmenter
    from robot_instseg.geometry.depth_order import depth_occlusion
    from robot_instseg.geometry.frame_3d import frame_3d
    from robot_instseg.ros.convert import instances_msg, labels_msg, markers_msg
    from robot_instseg.tracking.tracker import Tracker

    tracker = Tracker()
    segmenter = load_segmenter(model, SegmenterConfig(weak_score_threshold=tracker.config.low_score,
                                                      runtime=BackendConfig(spin_wait=spin)))
    frames = _clip_frames(objects, 40)
    feeds = [segmenter.input_feed(rgb) for rgb, *_ in frames]
    stages = {k: [] for k in STAGES}
    instances = []
    profiler = cProfile.Profile() if profile else None
    for run in range(runs + 5):
        index = run % len(frames)
        if index == 0:
            tracker.reset()
        rgb, depth, k, stamp = frames[index]
        t0 = time.perf_counter()
        segmenter.backend.run(feeds[index])
        t1 = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        t2 = time.perf_counter()
        result = segmenter.segment(rgb)
        t3 = time.perf_counter()
        output = resolved(result)
        t4 = time.perf_counter()
        # as the node: with the helper, the order and half of the surfaces on it; without, the order timed apart
        fusion = frame_3d(output.visible, depth, k, output.labels, order=parallel and order, parallel=parallel)
        t45 = time.perf_counter()
        if not parallel and order:
            fusion.occluded_by = depth_occlusion(output.visible, depth, output.labels)  # the node's default
        t5 = time.perf_counter()
        output.visible.track_ids = tracker.update(output.visible, stamp + run // len(frames) * 10.0,
                                                  fusion.centroids(), output.weak)
        t6 = time.perf_counter()
        header = Header(frame_id="camera")
        header.stamp.sec = int(stamp)
        instances_msg(output.visible, header, fusion, "")
        labels_msg(output.labels, header)
        if markers:  # the node builds them only while RViz (or anyone) subscribes to ~/markers
            markers_msg(output.visible, header, fusion=fusion)
        t7 = time.perf_counter()
        if profiler is not None:
            profiler.disable()
        if run < 5:
            continue
        times = result.times
        for key, ms in (("raw_session", (t1 - t0) * 1e3), ("preprocess", times.preprocess_ms),
                        ("decode", (t3 - t2) * 1e3 - times.inference_ms - times.preprocess_ms),
                        ("ownership", (t4 - t3) * 1e3), ("fusion", (t45 - t4) * 1e3), ("depth_order", (t5 - t45) * 1e3),
                        ("tracking", (t6 - t5) * 1e3), ("messages", (t7 - t6) * 1e3)):
            stages[key].append(ms)
        instances.append(len(output.visible))
    host = np.sum([stages[k] for k in stages if k != "raw_session"], axis=0)
    report = {k: round(float(np.median(v)), 3) for k, v in stages.items()}
    report.update(host_ms=round(float(np.median(host)), 3),
                  host_over_raw_paired_median=round(float(np.median(host / np.asarray(stages["raw_session"]))), 4),
                  instances_mean=round(float(np.mean(instances)), 2), runs=runs, model=str(segmenter.model_path))
    if profiler is not None:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(profile)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--runs", type=int, default=120)
    parser.add_argument("--objects", type=int, default=12, help="objects per clip frame (about 10 instances found)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the N costliest functions")
    parser.add_argument("--no-markers", action="store_true", help="leave out ~/markers (built only while subscribed)")
    parser.add_argument("--no-spin", action="store_true", help="onnxruntime's threads never spin (cpu_spin_wait false)")
    parser.add_argument("--one-thread", action="store_true",
                        help="the 3D without the helper thread (fusion, then the depth order)")
    parser.add_argument("--no-order", action="store_true",
                        help="leave out the occlusion order from depth (the node's occlusion_from_depth:=false)")
    args = parser.parse_args()
    report = measure(args.model, args.runs, args.objects, args.profile, markers=not args.no_markers,
                     spin=not args.no_spin, parallel=not args.one_thread, order=not args.no_order)
    report["order_from_depth"] = not args.no_order
    report["markers"], report["spin_wait"], report["helper_thread"] = not args.no_markers, not args.no_spin, \
        not args.one_thread
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['model']}: {report['runs']} runs, {report['instances_mean']} instances per frame, "
          f"markers {'built' if report['markers'] else 'not built'}")
    for key in STAGES + ("host_ms",):
        print(f"  {key:<14}{report[key]:8.2f} ms")
    print(f"host work / raw session.run (paired per-run median): {report['host_over_raw_paired_median']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
