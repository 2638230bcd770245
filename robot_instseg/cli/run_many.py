"""``robot-instseg run A B ...`` or ``run 'archive/**/*.mcap'``: one output bag per input under --out, here or on
Ray (one job for the whole archive, so workers never wait at a bag boundary); an input that cannot be read is
named and skipped, and the others are still written."""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path

from robot_instseg.cli.common import EXIT_NOTHING, LOG, CliError, make_segmenter


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
    from robot_instseg.cli.run import _run_to_bag, _tracker

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
    from robot_instseg.offline.unit_runner import WorkerProgress, items_only, run_units

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
    from robot_instseg.cli.ray_args import print_rates
    from robot_instseg.cli.run import _ray_plan

    plan, job = _ray_plan(args, inputs, segmenter, tracker, depth, ray)
    for reason in plan.refused:
        failed.append(reason)
        LOG.warning("skipped %s", reason)
    stream = run_units(job, plan.units, ray)
    try:
        with WorkerProgress(plan.total_frames, args.quiet) as progress:
            for source, group in itertools.groupby(stream, key=lambda row: row[0].source):
                yield source, items_only(group, progress)
        print_rates(progress, args.quiet)
    finally:
        stream.close()
