"""``robot-instseg bench``: the Segmenter against the raw runtime, or the live node end to end (``--ros``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from robot_instseg.cli.common import CliError, make_segmenter, segmenter_args


def _bench_images(folder: Path) -> list[Path]:
    """The image files under ``folder``; CliError when it is not a folder or holds none."""
    from robot_instseg.io.frame_sources import IMAGE_SUFFIXES, list_images

    if not folder.is_dir():
        raise CliError(f"{folder} is not a directory")
    images = [p for p in list_images(folder) if p.is_file()]
    if not images:
        raise CliError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    return images


def _depth_fusion(frames):
    """fuse(visible detections) against each scene's depth and the occlusion order read from it, as the node
    does by default, for the bench's fusion stage."""
    from robot_instseg.geometry.frame_3d import frame_3d

    def run(index: int, output):
        return frame_3d(output.visible, frames[index].depth, frames[index].intrinsics, output.labels)

    return run


def _tracking_cost(objects: int = 20, frames: int = 60) -> list[float]:
    """ms per Tracker.update on a synthetic clip of ``objects`` moving objects (their true visible masks as
    the detections: the tracker's cost does not depend on where the masks come from)."""
    import time

    import numpy as np

    from robot_instseg.engine.types import Detections
    from robot_instseg.synthetic.sequences import generate_clip
    from robot_instseg.tracking.tracker import Tracker

    tracker, times = Tracker(), []
    for frame in generate_clip(2026, frames, objects):
        masks = [m for m in frame.scene.visible_masks() if m.any()]
        detections = Detections.from_full_masks(np.array(masks), [0.9] * len(masks),
                                                [o.class_id for o, m in zip(frame.scene.objects,
                                                                             frame.scene.visible_masks()) if m.any()])
        started = time.perf_counter()
        tracker.update(detections, frame.stamp_s)
        times.append((time.perf_counter() - started) * 1e3)
    return times[5:]  # after the tracks exist


def cmd_bench(args: argparse.Namespace) -> int:
    """`robot-instseg bench`: time our pipeline against the raw runtime session on the same frames."""
    if args.ros:
        return cmd_bench_ros(args)
    from robot_instseg.engine.bench import run_benchmark
    from robot_instseg.io.frame_sources import read_rgb, scenes

    segmenter = make_segmenter(args)
    if args.batch:
        return _bench_batches(args, segmenter)
    if args.images:
        images = [img for img in (read_rgb(p) for p in _bench_images(Path(args.images))[: args.max_images])
                  if img is not None]
        fusion = None
    else:  # synthetic tabletop scenes: real instances, so post-processing is measured under load
        frames = list(scenes(seed=77, count=4, height=args.height, width=args.width, depth=True))
        images = [f.rgb for f in frames]
        fusion = _depth_fusion(frames)
    report = run_benchmark(segmenter, images, args.runs, args.warmup, fusion)
    summary = report.summary()
    tracking = _tracking_cost()
    summary["tracking_ms"] = round(float(np.median(tracking)), 3)
    summary["tracking_p95_ms"] = round(float(np.percentile(tracking, 95)), 3)
    summary["tracking_over_inference"] = round(summary["tracking_ms"] / summary["inference_ms"], 4)
    summary.update(model=str(segmenter.model_path), backend=segmenter.backend.description,
                   decoder=segmenter.decoder.name, input_size=list(segmenter.preprocess_config.size),
                   image_size=[int(images[0].shape[0]), int(images[0].shape[1])],
                   pipeline=segmenter.pipeline_device, placement=segmenter.stage_placement())
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"model     {summary['model']}  ({summary['decoder']}, input {summary['input_size']}, "
          f"{summary['backend']})")
    print(f"image     {summary['image_size'][1]}x{summary['image_size'][0]}, {summary['runs']} runs, "
          f"instances/frame mean {summary['instances_mean']} max {summary['instances_max']}")
    placement = summary["placement"] if args.device else {}
    print(f"{'stage':<14}{'median ms':>11}{'p95 ms':>10}{'  where' if placement else ''}")
    for stage in ("preprocess", "inference", "postprocess", "total", "raw_session", "raw_device", "ownership",
                  "fusion", "tracking"):
        if stage + "_ms" in summary:
            print(f"{stage:<14}{summary[stage + '_ms']:>11.2f}{summary[stage + '_p95_ms']:>10.2f}"
                  f"{'  ' + placement[stage] if stage in placement else ''}")
    if args.device:
        note = {"host": "host pipeline", "cpu": "cpu pipeline: torch on the CPU, the bytes are handed over in RAM"}
        print(f"host<->device per frame: {summary.get('h2d_bytes', 0):,} B up, {summary.get('d2h_bytes', 0):,} B down "
              f"({note.get(summary['pipeline'], summary['pipeline'] + ' pipeline')})")
        if "ratio_device" in summary:
            print(f"ratio total / raw runtime on a resident device tensor: {summary['ratio_device']:.3f}")
    print(f"ratio total / raw session.run: {summary['ratio']:.3f} (paired per-run median "
          f"{summary['ratio_paired_median']:.3f})   "
          f"postprocess / inference: {summary['postprocess_over_inference']:.3f}")
    print(f"with overlap ownership (what the node adds per frame): paired per-run median "
          f"{summary['ratio_with_ownership_paired_median']:.3f}")
    if "fusion_over_inference" in summary:
        print(f"depth fusion (3D of every instance) / inference: {summary['fusion_over_inference']:.3f}")
    print(f"tracking (20 objects per frame, synthetic clip) / inference: {summary['tracking_over_inference']:.3f}")
    return 0


def _bench_batches(args: argparse.Namespace, segmenter) -> int:
    """`robot-instseg bench --batch 1 2 4`: frames per session.run against one by one, whole pipeline and runtime."""
    from robot_instseg.engine.bench import run_batch_benchmark
    from robot_instseg.io.frame_sources import scenes

    if any(size < 1 for size in args.batch):
        raise CliError(f"--batch sizes must be at least 1, got {args.batch}")
    images = [f.rgb for f in scenes(seed=77, count=4, height=args.height, width=args.width)]
    rows = run_batch_benchmark(segmenter, images, args.batch, runs=args.runs, warmup=args.warmup)
    if args.json:
        print(json.dumps({"model": str(segmenter.model_path), "backend": segmenter.backend.description,
                          "image_size": [args.height, args.width], "batches": rows}))
        return 0
    print(f"model {segmenter.model_path} ({segmenter.backend.description}), {args.width}x{args.height}, "
          f"{args.runs} runs; ms per frame, medians")
    print(f"{'batch':>5}{'batched':>10}{'1 by 1':>9}{'speedup':>9}{'raw batched':>13}{'raw 1 by 1':>12}{'speedup':>9}")
    for r in rows:
        print(f"{r['batch']:>5}{r['batched_ms_per_frame']:>10.2f}{r['one_by_one_ms_per_frame']:>9.2f}"
              f"{r['speedup']:>9.3f}{r['raw_batched_ms_per_frame']:>13.2f}{r['raw_one_by_one_ms_per_frame']:>12.2f}"
              f"{r['raw_speedup']:>9.3f}")
    return 0


def cmd_bench_ros(args: argparse.Namespace) -> int:
    """`robot-instseg bench --ros`: end-to-end latency and rate through a real node over DDS."""
    from robot_instseg.ros.tools.bench import run_ros_bench

    if args.cameras < 1:
        raise CliError(f"--cameras must be at least 1, got {args.cameras}")
    result = run_ros_bench(args.model, rate_hz=args.rate, duration_s=args.duration, width=args.width,
                           height=args.height, cameras=args.cameras, max_batch=args.max_batch,
                           synchronised=args.synchronised, depth=args.depth)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"seg_node fed {result['frame'][0]}x{result['frame'][1]} frames at {result['rate_hz']:g} Hz for "
          f"{result['duration_s']:g} s: sent {result['sent']}, InstanceArrays received {result['received']}, "
          f"dropped by the node {result['node_dropped']}")
    print(f"{'':<34}{'median ms':>10}{'p95 ms':>10}")
    for key, label in (("end_to_end", "camera stamp -> InstanceArray"), ("transport_floor", "image pub -> sub (floor)"),
                       ("segmenter", "Segmenter alone")):
        st = result[key]
        print(f"{label:<34}{st.get('p50_ms', float('nan')):>10.2f}{st.get('p95_ms', float('nan')):>10.2f}")
    if "overhead_p50_ms" in result:
        print(f"node overhead (median e2e - floor - Segmenter): {result['overhead_p50_ms']:.2f} ms")
    if result["cameras"] > 1:
        print(f"{result['cameras']} {'synchronised' if result['synchronised'] else 'free-running'} cameras, one "
              f"node; batch sizes seen {result['batch_sizes_seen'] or '-'}; "
              f"served-share spread {result['served_share_spread']:.3f}")
        for cam in result["per_camera"]:
            print(f"  {cam['camera']:<8} sent {cam['sent']:>5} received {cam['received']:>5} "
                  f"dropped {cam['node_dropped']:>4} "
                  f"share {cam['served_share']:.3f}  p50 {cam.get('p50_ms', float('nan')):7.2f} ms  "
                  f"p95 {cam.get('p95_ms', float('nan')):7.2f} ms")
    for cam in result["per_camera"]:
        label = f"{cam['camera']}: " if result["cameras"] > 1 else ""
        if result["depth"]:
            print(f"{label}3D on {cam['frames_with_depth']} of {cam['frames']} frames ({cam['depth_share']:.1%}); "
                  f"the node waits up to {cam['wait_for_depth_ms'] or '?'} ms for depth (lag p90 "
                  f"{cam['lag_of_depth_p90_ms'] or '?'} ms); without: "
                  f"{', '.join(f'{k} {v}' for k, v in cam['without_depth'].items()) or 'none'}")
        print(f"{label}track ids on {cam['persisting_with_id']} of the {cam['persisting_instances']} instances that "
              f"persist from the frame before ({cam['id_share']:.1%})")
    print(f"node memory: {result['node_rss_mb']['start']} MB at start, {result['node_rss_mb']['end']} MB at end")
    for w in result["windows"]:
        print(f"  window from {w['t0_s']:>6.1f} s: n {w['n']:>5}  p50 {w.get('p50_ms', float('nan')):7.2f} ms  "
              f"p95 {w.get('p95_ms', float('nan')):7.2f} ms")
    return 0


def register(sub) -> None:
    """Add this module's verbs to the ``robot-instseg`` parser."""
    bench = sub.add_parser("bench", help="per-stage timings against the raw runtime, in one run")
    segmenter_args(bench)
    bench.add_argument("--images", default=None, help="folder of images (default: generated 640x480 frames)")
    bench.add_argument("--max-images", type=int, default=16)
    bench.add_argument("--device", action="store_true",
                       help="say where each stage ran and the host<->device bytes per frame")
    bench.add_argument("--runs", type=int, default=50)
    bench.add_argument("--warmup", type=int, default=5)
    bench.add_argument("--width", type=int, default=640)
    bench.add_argument("--height", type=int, default=480)
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--batch", type=int, nargs="+", default=None, metavar="B",
                       help="throughput of B frames per session.run against B runs one by one (model with a batch "
                            "axis), e.g. --batch 1 2 4")
    bench.add_argument("--ros", action="store_true",
                       help="end to end through a running seg_node: camera stamp -> InstanceArray vs transport floor")
    bench.add_argument("--rate", type=float, default=10.0, help="--ros: camera rate (Hz)")
    bench.add_argument("--depth", action="store_true",
                       help="--ros: also send each frame's registered depth and CameraInfo (same stamp), and report "
                            "the share of frames with 3D and the node's depth wait")
    bench.add_argument("--duration", type=float, default=20.0, help="--ros: seconds of input")
    bench.add_argument("--cameras", type=int, default=1,
                       help="--ros: cameras one node serves (cam0, cam1, ...), each at --rate: per-camera latency and "
                            "served share, node memory")
    bench.add_argument("--max-batch", type=int, default=None, help="--ros: the node's max_batch (default: its own)")
    bench.add_argument("--synchronised", action="store_true",
                       help="--ros with --cameras: all cameras publish at the same moments (hardware trigger); "
                            "default: free-running, phases spread over one period")
    bench.set_defaults(func=cmd_bench)
