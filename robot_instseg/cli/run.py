"""``robot-instseg run``: images, a video or a bag through the node's per-frame pipeline into COCO
results or a bag of the node's topics, written whole or not at all."""

from __future__ import annotations

import argparse
import itertools
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from robot_instseg.cli.common import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_NOTHING,
    LOG,
    CliError,
    make_segmenter,
    segmenter_args,
)
from robot_instseg.cli.ray_args import model_spec, print_rates, ray_args, ray_options
from robot_instseg.engine.frame_pipeline import MASK_KINDS


def _tracker(args: argparse.Namespace, source: str):
    """A Tracker for a sequence input (bag, video, scenes); None for a folder of unrelated images or --no-track."""
    from robot_instseg.tracking.tracker import Tracker

    return None if args.no_track or Path(source).is_dir() and not _is_bag(source) else Tracker()


def _is_bag(source: str) -> bool:
    from robot_instseg.io.frame_sources import is_bag

    return is_bag(Path(source))


def _run_to_json(args: argparse.Namespace, segmenter, segmented, tracker) -> int:
    """COCO results: image ids from --coco file_names (image folders) or by frame order (1..)."""
    from robot_instseg.dataset.coco_results import CocoIds, detections_to_results
    from robot_instseg.offline.frame_stage import frame_stamp, track

    source = Path(args.input)
    ids = CocoIds.from_file(Path(args.coco), segmenter.class_names) if args.coco else None
    categories = CocoIds({}, ids.categories if ids else {i: i + 1 for i in range(len(segmenter.class_names))})
    results, skipped, count = [], [], 0
    for index, done in enumerate(segmented):
        frame = done.frame
        image_id = index + 1
        if ids is not None:
            image_id = ids.image_id(source / frame.name, source) if source.is_dir() else None
            if image_id is None:
                skipped.append(f"{frame.name} (not in {args.coco})")
                continue
        if done.output is None:
            skipped.append(f"{frame.name} #{index} ({done.error})")
            continue
        sec, nanosec = frame_stamp(frame, index, 1.0 / args.fps)
        track(tracker, done, sec + nanosec * 1e-9)
        results.extend(detections_to_results(done.output.detections(args.masks), image_id, categories,
                                             done.fusion.occluded_by if done.fusion is not None else None))
        count += 1
    _report_skipped(skipped, count)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(results))
    partial.replace(out)  # whole or not at all: a failure never leaves a results file that looks complete
    print(f"wrote {len(results)} instances ({args.masks} masks) from {count} frames to {out}"
          + (f" ({len(skipped)} skipped)" if skipped else ""))
    return 0


def _report_skipped(skipped: list, done: int) -> None:
    """Name every skipped input; refuse (EXIT_NOTHING) when nothing at all could be processed."""
    for line in skipped:
        LOG.warning("skipped %s", line)
    if done == 0:
        first = f"; first: {skipped[0]}" if skipped else ""
        raise CliError(f"no frame could be segmented ({len(skipped)} skipped{first}); nothing written", EXIT_NOTHING)


BAG_FILE_STORAGE = {".mcap": "mcap", ".db3": "sqlite3"}


def _run_to_bag(args: argparse.Namespace, segmenter, segmented, tracker, out: Path,
                cameras: Optional[dict[str, str]] = None) -> int:
    """A bag folder at ``out``, or one bag file when it ends in .mcap / .db3.

    It is written beside ``out`` under a hidden .partial name and moved into place only when
    complete; after a failure the partial bag stays there (named in the error) and ``out``
    does not exist.
    """
    import shutil

    from robot_instseg.ros.tools.offline import run_to_bag

    storage = BAG_FILE_STORAGE.get(out.suffix.lower(), args.storage)
    if out.suffix.lower() in BAG_FILE_STORAGE and args.storage not in (storage, "mcap"):
        raise CliError(f"--out {out} is a {storage} file but --storage is {args.storage}")
    if out.exists():
        raise CliError(f"{out} exists; bags are never overwritten")
    staging = out.parent / f".{out.name}.partial"
    if staging.exists():
        raise CliError(f"{staging} exists (left by an earlier failed run); remove it first")
    staging.mkdir(parents=True)
    bag_dir = staging / (out.stem if out.suffix.lower() in BAG_FILE_STORAGE else out.name)
    try:
        summary = run_to_bag(segmenter, segmented, bag_dir, cameras=cameras, node_name=args.node_name,
                             storage=storage, period_s=1.0 / args.fps, with_images=not args.no_images,
                             masks=args.masks, tracker=tracker)
    except Exception as exc:
        raise CliError(f"{exc}; the frames written before the failure are in {bag_dir}",
                       EXIT_INPUT if isinstance(exc, (ValueError, OSError)) else EXIT_INTERNAL) from exc
    try:
        _report_skipped(summary.skipped, summary.frames)
    except CliError:
        shutil.rmtree(staging)
        raise
    if out.suffix.lower() in BAG_FILE_STORAGE:
        (bag_dir / f"{bag_dir.name}{out.suffix.lower()}").replace(out)
    else:
        bag_dir.replace(out)
    shutil.rmtree(staging)
    print(f"wrote {summary.frames} frames, {summary.instances} instances ({args.masks} masks) to bag {out} "
          f"({storage})" + (f"; {len(summary.skipped)} frames skipped" if summary.skipped else ""))
    if summary.with_3d or summary.without_3d:
        print(f"3D: {summary.with_3d} frames with depth fused"
              + "".join(f"; {n} without ({reason})" for reason, n in sorted(summary.without_3d.items())))
    return 0


def _camera_topics(topics: list[str]) -> dict[str, str]:
    """``--topic [NAME=]TOPIC`` values -> {input topic: camera name}; unnamed cameras are cam0, cam1, ... by
    position (outputs go to /NODE/NAME/instances, as the node with ``cameras`` publishes them)."""
    from robot_instseg.node.camera_stream import cameras_problem

    pairs = [value.split("=", 1) if "=" in value else (f"cam{index}", value) for index, value in enumerate(topics)]
    problem = cameras_problem([name for name, _ in pairs])
    if problem:
        raise CliError(problem.replace("cameras:", "--topic NAME=TOPIC:"))
    if len({topic for _, topic in pairs}) != len(pairs):
        raise CliError(f"--topic named twice: {topics}")
    return {topic: name for name, topic in pairs}


def _open_cameras(args: argparse.Namespace, cameras: dict[str, str]):
    """Several --topic of one bag (``cameras``: topic -> camera name): each camera's frames, merged in
    receive-time order; CliError when that combination is not one we can write."""
    from robot_instseg.io.frame_sources import open_source
    from robot_instseg.ros.tools.offline import merged_by_time

    if not _is_bag(args.input):
        raise CliError(f"several --topic need a bag input; {args.input} is not a bag")
    if Path(args.out).suffix.lower() == ".json":
        raise CliError("several --topic write a bag (outputs per camera); for COCO results run once per --topic")
    if args.depth_topic is not None:
        raise CliError("--depth-topic pairs depth with one camera; run once per --topic for 3D")
    return merged_by_time([open_source(args.input, bag_topic=topic) for topic in cameras])


def cmd_run(args: argparse.Namespace) -> int:
    """Segment image folders, videos or bags into COCO results JSON or bags of node outputs, here or on Ray."""
    from robot_instseg.offline.work_units import expand_inputs

    try:
        inputs = expand_inputs(args.input)
    except ValueError as exc:
        raise CliError(f"{exc}")
    ray = ray_options(args)
    if len(inputs) > 1:
        return run_many(args, inputs, ray)
    args.input = inputs[0]
    topics = args.topic or []
    cameras = _camera_topics(topics) if len(topics) > 1 else None
    if cameras is not None and ray is not None:
        raise CliError("--ray segments one camera per input; run once per --topic")
    tracker = _tracker(args, args.input)  # it also sees the frame's detections under --conf (never written)
    segmenter = make_segmenter(args, tracker.config.low_score if tracker is not None else None)
    with segmented_input(args, segmenter, tracker, ray, cameras) as segmented:
        if Path(args.out).suffix.lower() == ".json":
            return _run_to_json(args, segmenter, segmented, tracker)
        return _run_to_bag(args, segmenter, segmented, tracker, Path(args.out), cameras)


@contextmanager
def segmented_input(args: argparse.Namespace, segmenter, tracker, ray, cameras: Optional[dict[str, str]] = None):
    """The input's frames through their stateless stage, in order, counted on a progress bar: read and
    segmented here, or cut into units that Ray workers segment (``--ray``). A missing, empty or damaged
    input is refused here, before any output."""
    from robot_instseg.io.frame_sources import frame_count, open_source
    from robot_instseg.offline.frame_stage import segment_all
    from robot_instseg.offline.unit_runner import WorkerProgress, items_only

    depth = args.depth_topic is not None or args.input.startswith("scenes")
    topic = (args.topic or [None])[0]
    if ray is None:
        frames = _open_cameras(args, cameras) if cameras is not None else \
            open_source(args.input, bag_topic=topic, scene_depth=args.input.startswith("scenes"),
                        depth_topic=args.depth_topic, camera_info_topic=args.camera_info_topic)
        total = sum(frame_count(args.input, t) or 0 for t in cameras) if cameras is not None else \
            frame_count(args.input, topic)
        with WorkerProgress(total, args.quiet) as progress:
            yield progress.counted(segment_all(segmenter, frames, depth, not args.no_completion))
        print_rates(progress, args.quiet)
        return
    plan, job = _ray_plan(args, [args.input], segmenter, tracker, depth, ray)
    if plan.refused:
        raise CliError(plan.refused[0])
    from robot_instseg.offline.unit_runner import unit_stream

    with unit_stream(job, plan.units, ray, plan.total_frames, args.quiet) as (stream, progress):
        yield items_only(stream, progress)
    print_rates(progress, args.quiet)


def _ray_plan(args: argparse.Namespace, inputs: list[str], segmenter, tracker, depth: bool, ray):
    """The inputs cut into units, and the job each Ray worker runs: the Segmenter the driver loaded, rebuilt
    from its file and config."""
    from robot_instseg.offline.jobs import SegmentJob
    from robot_instseg.offline.work_units import plan_units

    to_bag = Path(args.out).suffix.lower() != ".json"  # pixels and label images are shipped back only to be written
    job = SegmentJob(model_spec(args, segmenter, tracker, ray), depth, not args.no_completion,
                     keep_pixels=to_bag and not args.no_images, keep_labels=to_bag)
    plan = plan_units(inputs, args.window_s, args.fps, (args.topic or [None])[0], args.depth_topic,
                      args.camera_info_topic, args.workers)
    return plan, job


# Several inputs (an archive): one output bag per input under --out.


def output_names(inputs: list[str]) -> list[str]:
    """Each input's output name: its path below the inputs' common folder, suffix dropped, '/' kept, so
    robot1/a.mcap and robot2/a.mcap do not collide."""
    paths = [Path(p).resolve() for p in inputs]
    root = Path(os.path.commonpath([p.parent for p in paths]))
    names = [str(p.relative_to(root).with_suffix("")) if p.suffix else str(p.relative_to(root)) for p in paths]
    if len(set(names)) != len(names):
        raise CliError("two inputs map to the same output name; give them in separate runs")
    return names


def run_many(args: argparse.Namespace, inputs: list[str], ray) -> int:
    """Every input into --out/NAME (a bag folder); the count of written and skipped inputs is printed."""
    out = Path(args.out)
    if out.suffix.lower() in (".json", ".mcap", ".db3"):
        raise CliError(f"several inputs write one bag each into a folder; --out {out} is a file name")
    if len(args.topic or []) > 1:
        raise CliError("several inputs take at most one --topic")
    names = output_names(inputs)
    tracker = next((t for t in (_tracker(args, path) for path in inputs) if t is not None), None)  # its low_score
    segmenter = make_segmenter(args, tracker.config.low_score if tracker is not None else None)
    out.mkdir(parents=True, exist_ok=True)
    written, failed = 0, []
    for source, segmented in _per_input(args, inputs, segmenter, tracker, ray, failed):
        one = argparse.Namespace(**{**vars(args), "input": inputs[source]})
        try:
            _run_to_bag(one, segmenter, segmented, _tracker(args, inputs[source]), out / names[source])
            written += 1
        except CliError as exc:
            failed.append(f"{inputs[source]}: {exc}")
            LOG.warning("skipped %s: %s", inputs[source], exc)
    print(f"{written} of {len(inputs)} inputs written to {out}" + (f"; {len(failed)} skipped:" if failed else ""))
    for line in failed:
        print(f"  {line}")
    if written == 0:
        raise CliError(f"no input could be segmented ({len(failed)} skipped); nothing written", EXIT_NOTHING)
    return 0


def _per_input(args: argparse.Namespace, inputs: list[str], segmenter, tracker, ray, failed: list[str]):
    """(input index, its segmented frames) per readable input, in input order; refusals go to ``failed``."""
    from robot_instseg.io.frame_sources import open_source
    from robot_instseg.offline.frame_stage import segment_all
    from robot_instseg.offline.unit_runner import WorkerProgress, items_only, unit_stream

    topic = (args.topic or [None])[0]
    depth = args.depth_topic is not None
    if ray is None:
        for source, path in enumerate(inputs):
            try:
                frames = open_source(path, bag_topic=topic, depth_topic=args.depth_topic,
                                     camera_info_topic=args.camera_info_topic)
            except ValueError as exc:
                failed.append(str(exc))
                LOG.warning("skipped %s", exc)
                continue
            with WorkerProgress(None, args.quiet, desc=Path(path).name) as progress:
                yield source, progress.counted(segment_all(segmenter, frames, depth, not args.no_completion))
        return

    plan, job = _ray_plan(args, inputs, segmenter, tracker, depth, ray)
    for reason in plan.refused:
        failed.append(reason)
        LOG.warning("skipped %s", reason)
    with unit_stream(job, plan.units, ray, plan.total_frames, args.quiet) as (stream, progress):
        for source, group in itertools.groupby(stream, key=lambda row: row[0].source):
            yield source, items_only(group, progress)
    print_rates(progress, args.quiet)


def register(sub) -> None:
    """Add this module's verbs to the ``robot-instseg`` parser."""
    run = sub.add_parser("run", help="segment images, a video or a bag into a bag of node outputs or COCO JSON")
    run.add_argument("input", nargs="+",
                     help="folder of images, video file, bag (folder or .mcap/.db3), image, or scenes[:SEED]; several, "
                          "or a quoted pattern ('archive/**/*.mcap'): --out is a folder with one bag per input")
    segmenter_args(run)
    run.add_argument("--out", required=True,
                     help="*.json: COCO results (RLE masks); *.mcap / *.db3: one bag file; otherwise a new bag folder "
                          "with the node's topics")
    run.add_argument("--topic", action="append", default=None,
                     help="bag input: the image topic (default: the first image topic); several --topic segment a "
                          "multi-camera bag into one bag with outputs per camera: NAME=TOPIC writes /NODE/NAME/instances "
                          "and /NODE/NAME/labels (unnamed: cam0, cam1, ... in order), each camera tracked on its own")
    run.add_argument("--depth-topic", default=None,
                     help="bag input: registered depth (16UC1 / 32FC1) to fill each instance's 3D, paired by stamp")
    run.add_argument("--camera-info-topic", default=None,
                     help="with --depth-topic: the colour CameraInfo topic (default: the bag's only one)")
    run.add_argument("--no-completion", action="store_true",
                     help="3D from each mask alone (the node's depth_complete_masks false); by default a mask is "
                          "completed from depth where it stops short of its object")
    run.add_argument("--coco", default=None, help="COCO file whose file_names give image ids and categories")
    run.add_argument("--node-name", default="seg_node", help="bag output: topics are /NAME/instances, /NAME/labels")
    run.add_argument("--storage", default="mcap", choices=("mcap", "sqlite3"), help="bag output format")
    run.add_argument("--fps", type=float, default=30.0, help="stamps for frames that have none (folders, videos)")
    run.add_argument("--no-images", action="store_true", help="bag output: leave the input frames out")
    run.add_argument("--no-track", action="store_true",
                     help="leave track_id 0 (default: a bag, video or scenes is tracked as the node does)")
    run.add_argument("--masks", default=MASK_KINDS[0], choices=MASK_KINDS,
                     help="visible: overlaps owned by mask evidence, as the node publishes; raw: the decoder's "
                          "overlapping masks")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    ray_args(run)
    run.set_defaults(func=cmd_run)
