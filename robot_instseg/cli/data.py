"""``robot-instseg bag2coco``, ``bag repair`` and ``eval``: the data loop's verbs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robot_instseg.cli.common import CliError, make_segmenter, segmenter_args
from robot_instseg.cli.ray_args import model_spec, ray_args, ray_options
from robot_instseg.engine.frame_pipeline import MASK_KINDS


def cmd_bag2coco(args: argparse.Namespace) -> int:
    """Bags -> COCO pre-annotations (see robot_instseg.dataset.bag2coco)."""
    from robot_instseg.dataset.bag2coco import export_bags
    from robot_instseg.dataset.bag_frames import ExportConfig

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
    ray = ray_options(args)
    segmenter = None if args.no_model else make_segmenter(args)  # for frames recorded without predictions
    try:
        summary = export_bags([Path(b) for b in args.bags], Path(args.out), config, segmenter,
                              repredict=args.repredict, progress=None if args.quiet else print, ray=ray,
                              model=model_spec(args, segmenter, ray=ray) if segmenter is not None else None)
    except ValueError as exc:
        raise CliError(f"{exc}")
    for reason in summary["skipped_bags"]:
        print(f"skipped {reason}", file=sys.stderr)
    for split, info in summary["splits"].items():
        print(f"{split:5} {info['images']:6d} images {info['instances']:7d} instances  bags: {', '.join(info['bags'])}")
    print(f"wrote {args.out}/annotations, images/, stats.json and mosaic.png"
          + (f"; {len(summary['skipped_bags'])} bags skipped (named above)" if summary["skipped_bags"] else ""))
    if args.cvat:
        from robot_instseg.dataset.cvat_export import write_cvat

        cvat = write_cvat(Path(args.out), Path(args.out) / "cvat" / "annotations.xml")
        print(f"wrote {cvat['file']}: CVAT for images 1.1, {cvat['images']} images, {cvat['masks']} masks, "
              f"score / track_id / QA flags declared on every label")
    return 0


def cmd_bag_repair(args: argparse.Namespace) -> int:
    """`robot-instseg bag repair`: make the bag(s) of a crashed writer readable again."""
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


def cmd_eval(args: argparse.Namespace) -> int:
    """Score predictions (a results / COCO file, or a model run on the images) against ground truth."""
    from robot_instseg.dataset.coco_check import load_checked_coco
    from robot_instseg.dataset.evaluate import category_map, results_for, write_metrics
    from robot_instseg.dataset.report import evaluation_report, format_report, load_predictions

    gt_path = args.gt or args.coco
    if not gt_path:
        raise CliError("--gt GT.json is required")
    if args.conf is None:  # AP integrates over every score; tracking runs at the node's threshold
        from robot_instseg.engine.postprocess import PostprocessSettings

        args.conf = PostprocessSettings().score_threshold if args.track else 0.01
    if args.ray is not None and (args.track or args.pred):
        raise CliError("--ray runs --model over --images; --pred and --track are scored here")
    if args.amodal and (args.track or args.pred):
        raise CliError("--amodal scores a --model with the amodal head on --images; not --pred or --track")
    gt = load_checked_coco(Path(gt_path))
    if args.track:
        return _eval_track(args, gt, gt_path)
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
        if args.amodal and getattr(segmenter.decoder, "amodal", None) is None:
            raise CliError(f"--amodal: {segmenter.model_path} has no amodal head (train --amodal adds one)")
        from robot_instseg.dataset.model_eval import segment_coco_images

        ray = ray_options(args)
        detections = segment_coco_images(segmenter, gt, Path(args.images), progress=not args.quiet,
                                         masks=args.masks, ray=ray,
                                         model=model_spec(args, segmenter, ray=ray) if ray is not None else None)
        results = results_for(detections, category_map(gt, segmenter.class_names))
        source = f"{segmenter.model_path} ({args.masks} masks)"
    report = evaluation_report(gt, results, tolerance=args.tolerance)
    report["predictions_from"] = source
    report["masks"] = args.masks if not args.pred else "as in --pred"
    report["ground_truth"] = str(gt_path)
    text = format_report(report)
    if args.amodal:
        from robot_instseg.dataset.amodal_eval import amodal_report, format_amodal

        try:
            report["amodal"] = amodal_report(gt, results, detections)
        except ValueError as exc:
            raise CliError(f"--amodal: {exc}")
        text += "\n" + format_amodal(report["amodal"], report["segm_AP"])
    if args.out:
        write_metrics(Path(args.out), report)
    print(json.dumps(report) if args.json else text)
    return 0


def _eval_track(args: argparse.Namespace, gt, gt_path: str) -> int:
    """`eval --track`: HOTA / IDF1 / MOTA / ID switches of our tracker (and ByteTrack) on a sequence dataset."""
    from robot_instseg.dataset.track_eval import (
        default_trackers,
        evaluate_tracking,
        load_clips,
        ours_at,
        segment_clips,
        tracked_results,
    )

    if args.track_high_score is not None and not 0.0 <= args.track_high_score <= 1.0:
        raise CliError(f"--track-high-score must be within 0..1, got {args.track_high_score}")
    if not args.pred and not args.images:
        raise CliError("--track needs --images DIR (the sequence dataset's folder, run through --model) or "
                       "--pred RESULTS.json with track_id")
    try:
        load_clips(gt)
    except ValueError as exc:
        raise CliError(str(exc))
    if args.keep_every < 1:
        raise CliError(f"--keep-every must be at least 1, got {args.keep_every}")
    if args.pred:
        try:
            detections, given = tracked_results(gt, json.loads(Path(args.pred).read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise CliError(f"{args.pred}: {exc}")
        trackers, model, weak = {"pred": given}, f"track_ids of {args.pred} (image ids of the dataset)", None
    else:
        from robot_instseg.tracking.tracker import TrackerConfig

        # as the node: the trackers also see the detections from track_low_score up to --conf (never scored)
        segmenter = make_segmenter(args, TrackerConfig().low_score)
        detections, weak = segment_clips(segmenter, gt, Path(args.images), progress=not args.quiet)
        trackers, model = default_trackers(baseline=not args.no_baseline), str(segmenter.model_path)
        if args.track_high_score is not None:
            trackers["ours"] = ours_at(args.track_high_score)
    reports = [evaluate_tracking(gt, detections, trackers, keep_every=k, weak=weak)
               for k in sorted({1, args.keep_every})]
    summary = {"ground_truth": str(gt_path), "model": model, "runs": reports,
               "baseline": "bytetrack" in trackers or ("off" if args.no_baseline else
                                                        "supervision not installed (make bench-deps)")}
    if args.out:
        from robot_instseg.dataset.evaluate import write_metrics

        write_metrics(Path(args.out), summary)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{reports[0]['clips']} clips, {reports[0]['frames']} frames, {model}")
    print(f"{'tracker':<11}{'frames':>8}{'HOTA':>8}{'DetA':>8}{'AssA':>8}{'IDF1':>8}{'MOTA':>8}{'IDSW':>6}"
          f"{'ms/frame':>10}{'id cover':>10}")
    for report in reports:
        label = "" if report["keep_every"] == 1 else f" 1/{report['keep_every']}"
        for name, m in report["trackers"].items():
            print(f"{name + label:<11}{report['frames']:>8}{m['HOTA']:>8.3f}{m['DetA']:>8.3f}{m['AssA']:>8.3f}"
                  f"{m['IDF1']:>8.3f}{m['MOTA']:>8.3f}{m['IDSW']:>6}{m['ms_per_frame']:>10.2f}"
                  f"{m['track_coverage']:>10.3f}")
    print("id cover: share of the published instances that persist from the previous frame (box IoU > 0.7) "
          "and carry a track id")
    if "bytetrack" not in trackers and not args.no_baseline and not args.pred:
        print("baseline: supervision is not installed (make bench-deps)")
    return 0


def cmd_eval3d(args: argparse.Namespace) -> int:
    """`robot-instseg eval3d`: per-instance 3D against rendered depth with known geometry."""
    from tqdm import tqdm

    from robot_instseg.dataset.depth_eval import evaluate_depth_fusion

    if args.scenes < 1:
        raise CliError(f"--scenes must be at least 1, got {args.scenes}")
    segmenter = None if args.gt_masks else make_segmenter(args)
    with tqdm(total=args.scenes, desc="scenes", unit="scene", disable=args.quiet, file=sys.stderr) as bar:
        summary = evaluate_depth_fusion(args.scenes, args.seed, segmenter, artefacts=not args.clean,
                                        progress=bar.update, complete=not args.no_completion).summary()
    summary.update(masks="ground truth" if args.gt_masks else f"model {segmenter.model_path}",
                   depth="clean" if args.clean else "sensor artefacts", seed=args.seed, scenes=args.scenes,
                   completion=not args.no_completion)
    if args.json:
        print(json.dumps(summary))
        return 0
    ours, naive, axis = summary["centroid_error_mm"], summary["naive_centroid_error_mm"], summary["long_axis_deg"]
    print(f"masks {summary['masks']}, depth {summary['depth']}, {args.scenes} scenes (seed {args.seed}): "
          f"{summary['matched']} of {summary['gt_instances']} instances matched, {summary['without_3d']} without 3D, "
          f"at {summary['distance_m']['min']:.2f}-{summary['distance_m']['max']:.2f} m")
    if ours["n"]:
        print(f"centroid error mm   ours: median {ours['median']:.2f}  p95 {ours['p95']:.2f}   "
              f"naive mean of masked depth: median {naive['median']:.2f}  p95 {naive['p95']:.2f}   "
              f"(naive / ours at p95: {naive['p95'] / max(ours['p95'], 1e-9):.2f})")
        plain = summary["mask_only_centroid_error_mm"]
        if not args.no_completion and plain["n"]:
            print(f"                    ours on the mask alone (no completion from depth): median {plain['median']:.2f}  "
                  f"p95 {plain['p95']:.2f}")
    if axis["n"]:
        print(f"long axis (tool, bottle): median {axis['median']:.2f} deg, within 10 deg: "
              f"{summary['long_axis_within_10deg']:.1%} of {axis['n']}")
    _print_box_sizes(summary["box_size"])
    for source, label in (("depth", "from depth"), ("whole_masks", "from whole masks")):
        order = summary["occlusion_order"][source]
        if order["images"]:  # whole masks: only from the ground truth or a model with the head
            print(f"occlusion order {label}: {order['right']} of {order['pairs']} ground-truth pairs right "
                  f"({order['order_accuracy']:.3f}); {order['matched_pairs']} matched, "
                  f"{order['order_accuracy_matched']:.3f} right, {order['reversed']} reversed; "
                  f"{order['spurious']} of {order['ordered']} orders between objects that do not overlap")
    print(f"fusion per frame: median {summary['fusion_ms']['median']:.2f} ms")
    return 0


def _print_box_sizes(box_size: dict) -> None:
    """eval3d's box-size lines: the visible surface's box, and the whole extent's where whole masks were given."""
    for name, label in (("all", "all matched"), ("occluded", "occluded")):
        errors = box_size[name]
        visible, whole = errors["visible_mm"], errors["whole_mm"]
        if not visible["n"]:
            continue
        line = (f"box size error mm, {label} ({visible['n']}): visible surface median {visible['median']:.1f} "
                f"p95 {visible['p95']:.1f} (long side {errors['long_side_visible_mm']['median']:+.1f})")
        if whole["n"]:
            line += (f"   whole extent median {whole['median']:.1f} p95 {whole['p95']:.1f} "
                     f"(long side {errors['long_side_whole_mm']['median']:+.1f})")
        print(line)


def register(sub) -> None:
    """Add this module's verbs to the ``robot-instseg`` parser."""
    b2c = sub.add_parser("bag2coco", help="bags -> COCO images + model predictions as pre-annotations (RLE)")
    segmenter_args(b2c)
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
    b2c.add_argument("--cvat", action="store_true",
                     help="also write cvat/annotations.xml (CVAT for images 1.1, attributes declared)")
    b2c.add_argument("--quiet", action="store_true")
    ray_args(b2c)
    b2c.set_defaults(func=cmd_bag2coco)

    bag = sub.add_parser("bag", help="bag tools")
    bag_sub = bag.add_subparsers(dest="bag_command", required=True)
    repair = bag_sub.add_parser("repair", help="rebuild a bag whose writer died (kill -9, power loss)")
    repair.add_argument("bags", nargs="+")
    repair.add_argument("--force", action="store_true", help="rewrite even a bag that looks complete")
    repair.set_defaults(func=cmd_bag_repair)

    evaluate = sub.add_parser("eval", help="segm/bbox AP, per-class AP, boundary F1 and mask QA against COCO GT")
    segmenter_args(evaluate)
    evaluate.add_argument("--gt", default=None, help="ground-truth COCO instances JSON")
    evaluate.add_argument("--coco", default=None, help=argparse.SUPPRESS)  # old name of --gt
    evaluate.add_argument("--pred", default=None,
                          help="predictions: COCO results JSON, or a COCO dataset such as bag2coco's output")
    evaluate.add_argument("--images", default=None, help="without --pred: run --model on these images")
    evaluate.add_argument("--masks", default=MASK_KINDS[0], choices=MASK_KINDS,
                          help="with --model: score the node's visible masks or the decoder's raw ones")
    evaluate.add_argument("--tolerance", type=float, default=2.0, help="boundary F1 tolerance in pixels")
    evaluate.add_argument("--out", default=None, help="also write the report JSON here")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--quiet", action="store_true")
    evaluate.add_argument("--amodal", action="store_true",
                          help="with --model (amodal head): also amodal AP on the whole masks and the accuracy of "
                               "occlusion order on the ground truth's covering pairs (scenes writes both)")
    evaluate.add_argument("--track", action="store_true",
                          help="score tracking on a sequence dataset (scenes --sequence): HOTA, IDF1, MOTA, ID "
                               "switches of our tracker and the ByteTrack baseline, TrackEval")
    evaluate.add_argument("--keep-every", type=int, default=2,
                          help="--track: also score on every N-th frame only (a node falling behind)")
    evaluate.add_argument("--no-baseline", action="store_true", help="--track: skip the ByteTrack baseline")
    evaluate.add_argument("--track-high-score", type=float, default=None,
                          help="--track: our tracker starts tracks from this fixed score (track_high_score with "
                               "track_scene_share 0) instead of the node's scene-following start score")
    ray_args(evaluate)
    evaluate.set_defaults(func=cmd_eval, conf=None)  # AP: 0.01 (integrates over every score); --track: 0.25

    eval3d = sub.add_parser("eval3d", help="per-instance 3D (centroid, long axis, box size with and without the "
                                           "whole extent) against rendered depth with known geometry, beside the "
                                           "naive mean of masked depth")
    segmenter_args(eval3d)
    eval3d.add_argument("--scenes", type=int, default=30, help="synthetic scenes (about 10 instances each)")
    eval3d.add_argument("--seed", type=int, default=7)
    eval3d.add_argument("--gt-masks", action="store_true", help="use the true visible masks instead of the model's")
    eval3d.add_argument("--clean", action="store_true", help="perfect depth (no sensor artefacts)")
    eval3d.add_argument("--no-completion", action="store_true",
                        help="read each mask alone, as the node with depth_complete_masks false")
    eval3d.add_argument("--json", action="store_true", help="print one JSON object")
    eval3d.add_argument("--quiet", action="store_true")
    eval3d.set_defaults(func=cmd_eval3d)
