"""``--ray [ADDRESS]`` and its options, shared by the offline verbs that can run on a Ray cluster
(``run``, ``bag2coco``, ``eval --model``)."""

from __future__ import annotations

import argparse
import os
import sys

from robot_instseg.cli.common import CliError


def ray_args(parser: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]`` and its options, for every offline verb that can run on a cluster."""
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="run on Ray Data (make setup-ray): alone, a local Ray started for this run; 'auto' or "
                             "ray://HOST:PORT joins a cluster (inputs and model must be at the same paths on every "
                             "node). Output equals the single-process run's")
    parser.add_argument("--workers", type=int, default=1, help="with --ray: worker actors, each with the model loaded")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0, help="with --ray: GPUs each worker reserves")
    parser.add_argument("--cpus-per-worker", type=float, default=0.0,
                        help="with --ray: CPUs each worker reserves, and its inference threads unless --threads "
                             "(0 = a local Ray's CPUs shared among --workers; 1 on a cluster)")
    parser.add_argument("--window-s", type=float, default=10.0,
                        help="with --ray: seconds of a bag or video per task (folders: window x --fps images); a bag "
                             "read with --depth-topic is one task")


def ray_options(args: argparse.Namespace):
    """RayOptions of ``--ray [ADDRESS]`` and its options; None without --ray."""
    from robot_instseg.offline.unit_runner import RayOptions

    if args.ray is None:
        return None
    if args.workers < 1 or args.gpus_per_worker < 0 or args.cpus_per_worker < 0 or args.window_s <= 0:
        raise CliError(f"--workers must be >= 1, --gpus-per-worker and --cpus-per-worker >= 0, --window-s > 0; got "
                       f"{args.workers}, {args.gpus_per_worker}, {args.cpus_per_worker}, {args.window_s}")
    if any(str(i).startswith("scenes") for i in getattr(args, "input", None) or []):
        raise CliError("--ray reads files (folders, videos, bags); scenes are generated here: drop --ray")
    cpus = args.cpus_per_worker or (max(1, (os.cpu_count() or 1) // args.workers) if not args.ray else 1)
    return RayOptions(address=args.ray or None, workers=args.workers, cpus_per_worker=cpus,
                      gpus_per_worker=args.gpus_per_worker)


def print_rates(progress, quiet: bool) -> None:
    """The start-up and the rates a run ends with (stderr, so stdout stays the verb's summary)."""
    if not quiet:
        print(f"frames per second: {progress.summary()}", file=sys.stderr)


def model_spec(args: argparse.Namespace, segmenter, tracker=None, ray=None):
    """The ModelSpec a Ray worker rebuilds the driver's Segmenter from (its file and the model arguments); each
    worker infers on the CPUs it reserved (``ray.cpus_per_worker``) unless --threads says otherwise, since
    workers that each spin up a thread per core of the machine starve one another."""
    from dataclasses import replace

    from robot_instseg.cli.common import segmenter_config
    from robot_instseg.offline.jobs import ModelSpec

    config = segmenter_config(args, tracker.config.low_score if tracker is not None else None)
    if ray is not None and not args.threads:
        config = replace(config, runtime=replace(config.runtime, num_threads=max(1, int(ray.cpus_per_worker))))
    return ModelSpec(str(segmenter.model_path), config)
