"""The 3D of a frame with and without the helper thread, paired frame by frame in one process.

Right after each raw ``session.run`` of the bundled model (as in the node, whose inference just left the
cores), ``geometry.frame_3d`` runs on the same frame once with the helper thread and once without, in
alternating order; the per-frame difference survives a shared machine whose speed drifts between runs.

    python scripts/frame_3d_helper.py [--model M] [--frames 200] [--objects 12] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def measure(model, frames: int, objects: int) -> dict:
    from host_work import _clip_frames

    from robot_instseg.engine.frame_pipeline import resolved
    from robot_instseg.engine.segmenter import SegmenterConfig, load_segmenter
    from robot_instseg.geometry.frame_3d import frame_3d

    segmenter = load_segmenter(model, SegmenterConfig())
    clip = _clip_frames(objects, 40)
    feeds = [segmenter.input_feed(rgb) for rgb, *_ in clip]
    outputs = [resolved(segmenter.segment(rgb)) for rgb, *_ in clip]
    times: dict[bool, list[float]] = {True: [], False: []}
    for run in range(frames + 4):
        index = run % len(clip)
        _, depth, k, _ = clip[index]
        output = outputs[index]
        for parallel in ((True, False) if run % 2 else (False, True)):
            segmenter.backend.run(feeds[index])
            started = time.perf_counter()
            frame_3d(output.visible, depth, k, output.labels, parallel=parallel)
            if run >= 4:
                times[parallel].append((time.perf_counter() - started) * 1e3)
    helper, alone = np.asarray(times[True]), np.asarray(times[False])
    return {"one_thread_ms": round(float(np.median(alone)), 3), "helper_ms": round(float(np.median(helper)), 3),
            "paired_saving_ms": round(float(np.median(alone - helper)), 3), "frames": frames,
            "instances_mean": round(float(np.mean([len(o.visible) for o in outputs])), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--objects", type=int, default=12)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = measure(args.model, args.frames, args.objects)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['frames']} frames, {report['instances_mean']} instances: one thread {report['one_thread_ms']:.2f} ms, "
              f"with the helper {report['helper_ms']:.2f} ms, paired median saving {report['paired_saving_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
