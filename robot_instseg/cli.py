"""`robot-instseg`: the command-line side of the package (bench, run, export, ...).

Every sub-command uses the same Segmenter as the node, so offline results match live ones.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

LOG = logging.getLogger("robot_instseg")

# Exit codes: 0 done; 1 internal error (a bug: -v shows the traceback); 2 bad input or arguments
# (a file missing, damaged or malformed; argparse uses 2 too); 3 nothing could be processed.
EXIT_INTERNAL, EXIT_INPUT, EXIT_NOTHING = 1, 2, 3


class CliError(Exception):
    """A refusal the user can act on: printed as one line on stderr, exit ``code``."""

    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


def _segmenter_args(parser: argparse.ArgumentParser, model_required: bool = False) -> None:
    parser.add_argument("--model", required=model_required, default=None,
                        help="ONNX model or TensorRT engine (default: the bundled model)")
    parser.add_argument("--format", default="auto", help="decoder: auto, yolo_seg, yolo_seg_e2e, detr_seg, maskrcnn")
    parser.add_argument("--labels", default=None, help="class-name file, one per line")
    parser.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "tensorrt"))
    parser.add_argument("--providers", default="cpu", help="ONNX Runtime providers in order, e.g. tensorrt,cuda,cpu")
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="CPU inference threads (0 = runtime default)")
    parser.add_argument("--conf", type=float, default=0.25, help="score threshold")
    parser.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold")
    parser.add_argument("--max-det", type=int, default=100)
    parser.add_argument("--classes", default="", help="comma-separated class names or ids to keep")


def make_segmenter(args: argparse.Namespace):
    from robot_instseg.engine.backends import BackendConfig, parse_providers
    from robot_instseg.engine.segmenter import SegmenterConfig, load_segmenter
    from robot_instseg.params import parse_class_filter

    runtime = BackendConfig(backend=args.backend, providers=parse_providers(args.providers), fp16=args.fp16,
                            num_threads=args.threads)
    config = SegmenterConfig(
        model_format=args.format, labels_path=args.labels, runtime=runtime,
        score_threshold=args.conf, iou_threshold=args.iou, max_detections=args.max_det,
        class_filter=parse_class_filter(args.classes))
    return load_segmenter(args.model, config)


def list_images(folder: Path) -> list[Path]:
    from robot_instseg.frame_sources import IMAGE_SUFFIXES, list_images as find_images

    if not folder.is_dir():
        raise CliError(f"{folder} is not a directory")
    images = [p for p in find_images(folder) if p.is_file()]
    if not images:
        raise CliError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    return images


def read_rgb(path: Path):
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# -- bench ------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    if args.ros:
        return cmd_bench_ros(args)
    from robot_instseg.bench import run_benchmark
    from robot_instseg.frame_sources import scenes

    segmenter = make_segmenter(args)
    if args.images:
        images = [img for img in (read_rgb(p) for p in list_images(Path(args.images))[: args.max_images])
                  if img is not None]
    else:  # synthetic tabletop scenes: real instances, so post-processing is measured under load
        images = [f.rgb for f in scenes(seed=77, count=4, height=args.height, width=args.width)]
    report = run_benchmark(segmenter, images, args.runs, args.warmup)
    summary = report.summary()
    summary.update(model=str(segmenter.model_path), backend=segmenter.backend.description,
                   decoder=segmenter.decoder.name, input_size=list(segmenter.preprocess_config.size),
                   image_size=[int(images[0].shape[0]), int(images[0].shape[1])])
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"model     {summary['model']}  ({summary['decoder']}, input {summary['input_size']}, "
          f"{summary['backend']})")
    print(f"image     {summary['image_size'][1]}x{summary['image_size'][0]}, {summary['runs']} runs, "
          f"instances/frame mean {summary['instances_mean']} max {summary['instances_max']}")
    print(f"{'stage':<14}{'median ms':>11}{'p95 ms':>10}")
    for stage in ("preprocess", "inference", "postprocess", "total", "raw_session", "ownership"):
        print(f"{stage:<14}{summary[stage + '_ms']:>11.2f}{summary[stage + '_p95_ms']:>10.2f}")
    print(f"ratio total / raw session.run: {summary['ratio']:.3f} (paired per-run median "
          f"{summary['ratio_paired_median']:.3f})   "
          f"postprocess / inference: {summary['postprocess_over_inference']:.3f}")
    print(f"with overlap ownership (what the node adds per frame): paired per-run median "
          f"{summary['ratio_with_ownership_paired_median']:.3f}")
    return 0


def cmd_bench_ros(args: argparse.Namespace) -> int:
    from robot_instseg.ros.bench import run_ros_bench

    result = run_ros_bench(args.model, rate_hz=args.rate, duration_s=args.duration, width=args.width,
                           height=args.height)
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
    print(f"node memory: {result['node_rss_mb']['start']} MB at start, {result['node_rss_mb']['end']} MB at end")
    for w in result["windows"]:
        print(f"  window from {w['t0_s']:>6.1f} s: n {w['n']:>5}  p50 {w.get('p50_ms', float('nan')):7.2f} ms  "
              f"p95 {w.get('p95_ms', float('nan')):7.2f} ms")
    return 0


# -- play / demo -------------------------------------------------------------------------
def cmd_play(args: argparse.Namespace) -> int:
    from robot_instseg.frame_sources import open_source
    from robot_instseg.ros.play import PlayOptions, run_play

    frames = open_source(args.source, bag_topic=args.bag_topic, scene_count=args.count)
    options = PlayOptions(topic=args.topic, rate_hz=args.rate, encoding=args.encoding, compressed=args.compressed,
                          frame_id=args.frame_id, reliability=args.reliability, duration_s=args.duration,
                          max_frames=args.frames, loop=args.loop or args.source.startswith("scenes"))
    sent = run_play(frames, options, wait_s=args.wait)
    print(f"published {sent} frames on {args.topic}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from robot_instseg.ros.demo import run_demo

    return run_demo(args.model, Path(args.out), rate_hz=args.rate, duration_s=args.duration, overlays=args.overlays)


# -- run --------------------------------------------------------------------------------
def _run_to_json(args: argparse.Namespace, segmenter, frames, progress) -> int:
    """COCO results: image ids from --coco file_names (image folders) or by frame order (1..)."""
    from robot_instseg.dataset.coco_results import CocoIds, detections_to_results
    from robot_instseg.engine.errors import InputError
    from robot_instseg.frame_pipeline import frame_image, segment_frame

    source = Path(args.input)
    ids = CocoIds.from_file(Path(args.coco), segmenter.class_names) if args.coco else None
    categories = CocoIds({}, ids.categories if ids else {i: i + 1 for i in range(len(segmenter.class_names))})
    results, skipped, count = [], [], 0
    for index, frame in enumerate(frames):
        progress.update(1)
        image_id = index + 1
        if ids is not None:
            image_id = ids.image_id(source / frame.name, source) if source.is_dir() else None
            if image_id is None:
                skipped.append(f"{frame.name} (not in {args.coco})")
                continue
        try:
            image, order = frame_image(frame)
        except InputError as exc:
            skipped.append(f"{frame.name} #{index} ({exc})")
            continue
        detections = segment_frame(segmenter, image, order).detections(args.masks)
        results.extend(detections_to_results(detections, image_id, categories))
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


def _run_to_bag(args: argparse.Namespace, segmenter, frames, progress) -> int:
    """A bag folder at --out, or one bag file when --out ends in .mcap / .db3.

    It is written beside --out under a hidden .partial name and moved into place only when
    complete; after a failure the partial bag stays there (named in the error) and --out
    does not exist.
    """
    import shutil

    from robot_instseg.ros.offline import run_to_bag

    out = Path(args.out)
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
        summary = run_to_bag(segmenter, frames, bag_dir, node_name=args.node_name, storage=storage,
                             period_s=1.0 / args.fps, with_images=not args.no_images,
                             on_frame=lambda: progress.update(1), masks=args.masks)
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
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Segment an image folder, a video or a bag into COCO results JSON or a bag of node outputs."""
    from tqdm import tqdm

    from robot_instseg.frame_sources import frame_count, open_source

    frames = open_source(args.input, bag_topic=args.topic)  # a missing, empty or damaged input is refused here
    segmenter = make_segmenter(args)
    with tqdm(total=frame_count(args.input, args.topic), desc="segmenting", unit="frame", disable=args.quiet,
              file=sys.stderr) as progress:
        if Path(args.out).suffix.lower() == ".json":
            return _run_to_json(args, segmenter, frames, progress)
        return _run_to_bag(args, segmenter, frames, progress)


# -- bag2coco / bag repair -------------------------------------------------------------
def cmd_bag2coco(args: argparse.Namespace) -> int:
    """Bags -> COCO pre-annotations (see robot_instseg.dataset.bag2coco)."""
    from robot_instseg.dataset.bag2coco import ExportConfig, export_bags

    try:
        split = tuple(float(v) for v in args.split.split(","))
        assert len(split) == 3 and min(split) >= 0 and sum(split) > 0
    except (ValueError, AssertionError):
        raise CliError(f"--split wants three non-negative ratios, got {args.split!r}")
    for bag in args.bags:
        if not Path(bag).exists():
            raise CliError(f"{bag}: no such bag")
    config = ExportConfig(image_topic=args.topic, instances_topic=args.instances_topic, stride=args.stride,
                          min_sharpness=args.min_sharpness, dedup_threshold=args.dedup, split=split, seed=args.seed,
                          image_format=args.image_format)
    segmenter = None if args.no_model else make_segmenter(args)  # for frames recorded without predictions
    try:
        summary = export_bags([Path(b) for b in args.bags], Path(args.out), config, segmenter,
                              repredict=args.repredict, progress=None if args.quiet else print)
    except ValueError as exc:
        raise CliError(f"{exc}")
    for split, info in summary["splits"].items():
        print(f"{split:5} {info['images']:6d} images {info['instances']:7d} instances  bags: {', '.join(info['bags'])}")
    print(f"wrote {args.out}/annotations, images/, stats.json and mosaic.png")
    return 0


def cmd_bag_repair(args: argparse.Namespace) -> int:
    from robot_instseg.recording.repair import needs_repair, repair_bag

    status = 0
    for bag in map(Path, args.bags):
        if not needs_repair(bag) and not args.force:
            print(f"{bag}: has metadata.yaml, nothing to repair (--force rewrites it anyway)")
            continue
        try:
            report = repair_bag(bag)
        except (ValueError, OSError) as exc:
            print(f"{bag}: cannot repair: {exc}", file=sys.stderr)
            status = 1
            continue
        topics = ", ".join(f"{t} {n}" for t, n in sorted(report.topics.items()))
        print(f"{bag}: recovered {report.messages} messages ({topics}); "
              f"{'stopped at a torn record: ' + report.truncated if report.truncated else 'file ended cleanly'}; "
              f"original kept as {report.damaged_copy}")
    return status


# -- eval -------------------------------------------------------------------------------
def evaluate_model(segmenter, coco_file: Path, images_dir: Path, progress: bool = False,
                   masks: str = "visible") -> dict:
    """Segment every image of a COCO file with ``segmenter`` and score it (COCOeval segm + boundary F1
    at 2 px and the DAVIS tolerance); the trainer's validation metric, as a function."""
    from robot_instseg.dataset.coco_check import load_checked_coco
    from robot_instseg.dataset.evaluate import davis_tolerance, evaluate_detections

    gt = load_checked_coco(coco_file)
    detections = segment_coco_images(segmenter, gt, images_dir, progress, masks)
    first = gt.loadImgs(sorted(gt.getImgIds())[:1])
    tolerances = (2.0, davis_tolerance((first[0]["height"], first[0]["width"]))) if first else (2.0,)
    metrics = evaluate_detections(gt, detections, segmenter.class_names, tolerances)
    metrics["images"] = len(detections)
    metrics["masks"] = masks
    return metrics


def segment_coco_images(segmenter, gt, images_dir: Path, progress: bool = False, masks: str = "visible") -> dict:
    """image id -> Detections (``masks``: "visible" as the node publishes, or "raw") for every image
    of a COCO ground truth."""
    from tqdm import tqdm

    from robot_instseg.frame_pipeline import segment_frame

    detections = {}
    for info in tqdm(gt.loadImgs(sorted(gt.getImgIds())), desc="segmenting", unit="img", disable=not progress,
                     file=sys.stderr):
        image = read_rgb(Path(images_dir) / info["file_name"])
        if image is None:
            raise CliError(f"cannot read {Path(images_dir) / info['file_name']}")
        detections[int(info["id"])] = segment_frame(segmenter, image, "rgb").detections(masks)
    return detections


def cmd_eval(args: argparse.Namespace) -> int:
    """Score predictions (a results / COCO file, or a model run on the images) against ground truth."""
    from robot_instseg.dataset.coco_check import load_checked_coco
    from robot_instseg.dataset.evaluate import category_map, results_for, write_metrics
    from robot_instseg.dataset.report import evaluation_report, format_report, load_predictions

    gt_path = args.gt or args.coco
    if not gt_path:
        raise CliError("--gt GT.json is required")
    gt = load_checked_coco(Path(gt_path))
    if args.pred:
        try:
            results = load_predictions(Path(args.pred), gt)
        except ValueError as exc:
            raise CliError(f"{exc}")
        source = str(args.pred)
    else:
        if not args.images:
            raise CliError("give --pred P.json, or --images DIR (with --model M)")
        segmenter = make_segmenter(args)
        detections = segment_coco_images(segmenter, gt, Path(args.images), progress=not args.quiet,
                                         masks=args.masks)
        results = results_for(detections, category_map(gt, segmenter.class_names))
        source = f"{segmenter.model_path} ({args.masks} masks)"
    report = evaluation_report(gt, results, tolerance=args.tolerance)
    report["predictions_from"] = source
    report["masks"] = args.masks if not args.pred else "as in --pred"
    report["ground_truth"] = str(gt_path)
    if args.out:
        write_metrics(Path(args.out), report)
    print(json.dumps(report) if args.json else format_report(report))
    return 0


# -- export -----------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from robot_instseg.train.export import export_checkpoint

    out = export_checkpoint(Path(args.checkpoint), Path(args.out), args.imgsz)
    print(f"exported {out}; onnxruntime output matches PyTorch")
    return 0


# -- train ----------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from robot_instseg.train.dataset import DatasetSource
    from robot_instseg.train.trainer import Trainer, TrainConfig

    if len(args.coco) != len(args.images):
        raise CliError("give one --images folder for each --coco file")
    if (args.val_coco is None) != (args.val_images is None):
        raise CliError("--val-coco and --val-images go together")
    config = TrainConfig(
        train=[DatasetSource(Path(c), Path(i)) for c, i in zip(args.coco, args.images)],
        val=DatasetSource(Path(args.val_coco), Path(args.val_images)) if args.val_coco else None,
        out=Path(args.out), epochs=args.epochs, batch=args.batch, imgsz=tuple(args.imgsz), width=args.width,
        lr=args.lr, seed=args.seed, device=args.device, threads=args.threads, max_iters=args.max_iters,
        train_limit=args.limit, val_limit=args.val_limit, resume=args.resume, amp=args.amp,
        progress=not args.quiet)
    trainer = Trainer(config)
    metrics = trainer.fit()
    print(f"trained {trainer.iteration} iterations; checkpoints in {config.out} (best.pt, last.pt); "
          f"last epoch: " + json.dumps(metrics))
    return 0


# -- scenes -----------------------------------------------------------------------------
def cmd_scenes(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from robot_instseg.train.scenes import write_dataset

    with tqdm(total=args.count, desc="scenes", unit="img", disable=args.quiet, file=sys.stderr) as bar:
        path = write_dataset(Path(args.out), args.count, args.seed, args.height, args.width, progress=bar.update)
    print(f"wrote {args.count} scenes to {Path(args.out) / 'images'} and {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robot-instseg", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser("bench", help="per-stage timings against the raw runtime, in one run")
    _segmenter_args(bench)
    bench.add_argument("--images", default=None, help="folder of images (default: generated 640x480 frames)")
    bench.add_argument("--max-images", type=int, default=16)
    bench.add_argument("--runs", type=int, default=50)
    bench.add_argument("--warmup", type=int, default=5)
    bench.add_argument("--width", type=int, default=640)
    bench.add_argument("--height", type=int, default=480)
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--ros", action="store_true",
                       help="end to end through a running seg_node: camera stamp -> InstanceArray vs transport floor")
    bench.add_argument("--rate", type=float, default=10.0, help="--ros: camera rate (Hz)")
    bench.add_argument("--duration", type=float, default=20.0, help="--ros: seconds of input")
    bench.set_defaults(func=cmd_bench)

    run = sub.add_parser("run", help="segment images, a video or a bag into a bag of node outputs or COCO JSON")
    run.add_argument("input", help="folder of images, video file, bag (folder or .mcap/.db3), image, or scenes[:SEED]")
    _segmenter_args(run)
    run.add_argument("--out", required=True,
                     help="*.json: COCO results (RLE masks); *.mcap / *.db3: one bag file; otherwise a new bag folder "
                          "with the node's topics")
    run.add_argument("--topic", default=None, help="bag input: the image topic (default: the first image topic)")
    run.add_argument("--coco", default=None, help="COCO file whose file_names give image ids and categories")
    run.add_argument("--node-name", default="seg_node", help="bag output: topics are /NAME/instances, /NAME/labels")
    run.add_argument("--storage", default="mcap", choices=("mcap", "sqlite3"), help="bag output format")
    run.add_argument("--fps", type=float, default=30.0, help="stamps for frames that have none (folders, videos)")
    run.add_argument("--no-images", action="store_true", help="bag output: leave the input frames out")
    run.add_argument("--masks", default="visible", choices=("visible", "raw"),
                     help="visible: overlaps owned by mask evidence, as the node publishes; raw: the decoder's "
                          "overlapping masks")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)

    scenes = sub.add_parser("scenes", help="synthetic tabletop scenes with exact instance masks (COCO)")
    scenes.add_argument("--out", required=True, help="writes OUT/images/*.png and OUT/annotations.json")
    scenes.add_argument("--count", type=int, required=True)
    scenes.add_argument("--seed", type=int, required=True)
    scenes.add_argument("--width", type=int, default=640)
    scenes.add_argument("--height", type=int, default=480)
    scenes.add_argument("--quiet", action="store_true")
    scenes.set_defaults(func=cmd_scenes)

    play = sub.add_parser("play", help="publish images, a video, a bag or synthetic scenes as a camera would")
    play.add_argument("source", help="folder of images, video file, bag (folder or .mcap/.db3), or scenes[:SEED]")
    play.add_argument("--topic", default="/camera/image_raw")
    play.add_argument("--rate", type=float, default=15.0, help="frames per second")
    play.add_argument("--encoding", default="rgb8", choices=("rgb8", "bgr8", "mono8"))
    play.add_argument("--compressed", action="store_true", help="publish sensor_msgs/CompressedImage (JPEG)")
    play.add_argument("--frame-id", default="camera")
    play.add_argument("--reliability", default="reliable", choices=("reliable", "best_effort"))
    play.add_argument("--duration", type=float, default=60.0, help="stop after this many seconds")
    play.add_argument("--frames", type=int, default=None, help="stop after this many frames")
    play.add_argument("--loop", action="store_true", help="repeat the source (scenes always loop)")
    play.add_argument("--count", type=int, default=8, help="scenes: distinct scenes to generate")
    play.add_argument("--bag-topic", default=None, help="bag: which image topic (default: the first)")
    play.add_argument("--wait", type=float, default=5.0, help="seconds to wait for a subscriber first")
    play.set_defaults(func=cmd_play)

    demo = sub.add_parser("demo", help="seg_node + bundled model + synthetic camera, watched live (stops itself)")
    demo.add_argument("--model", default=None, help="default: the bundled model")
    demo.add_argument("--out", default="demo_out", help="overlay PNGs and the node's log")
    demo.add_argument("--rate", type=float, default=15.0)
    demo.add_argument("--duration", type=float, default=20.0)
    demo.add_argument("--overlays", type=int, default=4)
    demo.set_defaults(func=cmd_demo)

    train = sub.add_parser("train", help="train CompactSeg on COCO instance data (checkpoints + val mask AP)")
    train.add_argument("--coco", action="append", required=True, help="COCO instances JSON (repeatable)")
    train.add_argument("--images", action="append", required=True, help="image folder for each --coco")
    train.add_argument("--val-coco", default=None, help="COCO file scored (segm AP) after every epoch")
    train.add_argument("--val-images", default=None)
    train.add_argument("--out", default="runs/train", help="run folder: last.pt, best.pt, metrics.jsonl")
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--batch", type=int, default=16)
    train.add_argument("--imgsz", type=int, nargs="+", default=[288, 384], metavar="N",
                       help="input height width (or one side of a square); multiples of 32")
    train.add_argument("--width", type=int, default=32, help="network width (32: 2.4 M parameters)")
    train.add_argument("--lr", type=float, default=2e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    train.add_argument("--amp", choices=("auto", "bf16", "off"), default="auto",
                       help="bfloat16 autocast (auto: on; off for GPUs without bf16)")
    train.add_argument("--max-iters", type=int, default=None, help="stop after this many iterations")
    train.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    train.add_argument("--val-limit", type=int, default=None)
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=cmd_train)

    b2c = sub.add_parser("bag2coco", help="bags -> COCO images + model predictions as pre-annotations (RLE)")
    _segmenter_args(b2c)
    b2c.add_argument("bags", nargs="+", help="bag folders (or .mcap / .db3 files)")
    b2c.add_argument("--out", required=True, help="dataset folder to write")
    b2c.add_argument("--topic", default=None, help="image topic (default: each bag's first image topic)")
    b2c.add_argument("--instances-topic", default=None, help="InstanceArray topic (default: the first one)")
    b2c.add_argument("--stride", type=int, default=1, help="keep every N-th frame")
    b2c.add_argument("--min-sharpness", type=float, default=30.0,
                     help="drop frames whose Laplacian variance is below this (0 = keep blurred frames)")
    b2c.add_argument("--dedup", type=float, default=0.01,
                     help="drop frames whose thumbnail differs from the last kept by less than this (0..1; 0 = off)")
    b2c.add_argument("--split", default="0.8,0.1,0.1", help="train,val,test ratios, assigned by whole bags")
    b2c.add_argument("--seed", type=int, default=0, help="seed of the bag-to-split assignment")
    b2c.add_argument("--image-format", default="jpg", choices=("jpg", "png"))
    b2c.add_argument("--repredict", action="store_true",
                     help="predict with --model even where the bag has recorded InstanceArrays")
    b2c.add_argument("--no-model", action="store_true",
                     help="never run a model: frames without recorded InstanceArrays get no pre-annotations")
    b2c.add_argument("--quiet", action="store_true")
    b2c.set_defaults(func=cmd_bag2coco)

    bag = sub.add_parser("bag", help="bag tools")
    bag_sub = bag.add_subparsers(dest="bag_command", required=True)
    repair = bag_sub.add_parser("repair", help="rebuild a bag whose writer died (kill -9, power loss)")
    repair.add_argument("bags", nargs="+")
    repair.add_argument("--force", action="store_true", help="rewrite even a bag that looks complete")
    repair.set_defaults(func=cmd_bag_repair)

    evaluate = sub.add_parser("eval", help="segm/bbox AP, per-class AP, boundary F1 and mask QA against COCO GT")
    _segmenter_args(evaluate)
    evaluate.add_argument("--gt", default=None, help="ground-truth COCO instances JSON")
    evaluate.add_argument("--coco", default=None, help=argparse.SUPPRESS)  # old name of --gt
    evaluate.add_argument("--pred", default=None,
                          help="predictions: COCO results JSON, or a COCO dataset such as bag2coco's output")
    evaluate.add_argument("--images", default=None, help="without --pred: run --model on these images")
    evaluate.add_argument("--masks", default="visible", choices=("visible", "raw"),
                          help="with --model: score the node's visible masks or the decoder's raw ones")
    evaluate.add_argument("--tolerance", type=float, default=2.0, help="boundary F1 tolerance in pixels")
    evaluate.add_argument("--out", default=None, help="also write the report JSON here")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--quiet", action="store_true")
    evaluate.set_defaults(func=cmd_eval, conf=0.01)  # low: AP integrates over every score

    export = sub.add_parser("export", help="checkpoint -> ONNX (checked against PyTorch)")
    export.add_argument("checkpoint")
    export.add_argument("--out", required=True)
    export.add_argument("--imgsz", type=int, nargs="+", default=None, metavar="N",
                        help="input size: one side of a square, or height width (default: the training size)")
    export.set_defaults(func=cmd_export)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one verb. Every failure is one line on stderr and a distinct exit code (see EXIT_*);
    ``-v`` shows the traceback instead."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from robot_instseg.engine.errors import EngineError

    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"robot-instseg {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place every error becomes a line
        if args.verbose:
            raise
        if isinstance(exc, CliError):
            message, code = str(exc), exc.code
        elif isinstance(exc, (EngineError, ValueError, OSError)):
            message, code = str(exc), EXIT_INPUT
        else:
            message, code = (f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)",
                             EXIT_INTERNAL)
        print(f"robot-instseg {args.command}: {' '.join(message.split())}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
