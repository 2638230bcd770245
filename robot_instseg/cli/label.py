"""``robot-instseg label push|pull|serve`` and ``dataset merge``: the round trip through Label Studio."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from robot_instseg.cli.common import CliError, make_segmenter, segmenter_args


def _client(args: argparse.Namespace):
    from robot_instseg.labelling.client import LabelStudioClient

    key = args.api_key or os.environ.get("LABEL_STUDIO_API_KEY", "")
    return LabelStudioClient(args.url, key)


def cmd_push(args: argparse.Namespace) -> int:
    """Dataset -> Label Studio tasks with our predictions (see robot_instseg.labelling.push)."""
    from robot_instseg.labelling.push import PushConfig, push_dataset

    if not Path(args.dataset).is_dir():
        raise CliError(f"{args.dataset}: no such dataset folder")
    config = PushConfig(project=args.project, kind=args.kind, storage=args.storage,
                        document_root=Path(args.document_root) if args.document_root else None,
                        model_version=args.model_version)
    report = push_dataset(_client(args), Path(args.dataset), config, None if args.quiet else print)
    print(f"project {args.project!r} (id {report.project_id}{', created' if report.project_created else ''}): "
          f"{report.tasks_added} tasks added, {report.tasks_already_there} already there, "
          f"{report.predicted_regions} predicted regions, images by {report.storage}, "
          f"model_version {report.model_version}")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    """Reviewed tasks -> COCO with provenance and a review report (see robot_instseg.labelling.pull)."""
    from robot_instseg.labelling.pull import pull_project
    from robot_instseg.labelling.review_report import format_review

    report = pull_project(_client(args), args.project, Path(args.out), include_unreviewed=args.include_unreviewed)
    print(json.dumps(report.report) if args.json else format_review(report.report))
    print(f"wrote {', '.join(report.files.values())}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the ML backend until interrupted."""
    import uvicorn

    from robot_instseg.dataset.bag2coco import model_version_of
    from robot_instseg.labelling.backend import BackendSettings, Predictor, create_app

    segmenter = make_segmenter(args)
    settings = BackendSettings(label_studio_url=args.url, api_key=args.api_key or os.environ.get("LABEL_STUDIO_API_KEY"),
                               local_files_root=Path(args.local_files_root) if args.local_files_root else None)
    version = model_version_of(segmenter.model_path)
    predictor = Predictor(segmenter, settings, version)
    print(f"robot_instseg ML backend on http://{args.host}:{args.port} ({version})", flush=True)
    uvicorn.run(create_app(predictor), host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    """Several datasets -> one that train reads (see robot_instseg.dataset.merge)."""
    from robot_instseg.dataset.merge import merge_datasets

    for source in args.datasets:
        if not Path(source).is_dir():
            raise CliError(f"{source}: no such dataset folder")
    summary = merge_datasets([Path(s) for s in args.datasets], Path(args.out))
    for split, info in summary.items():
        print(f"{split:5} {info['images']:6d} images {info['instances']:7d} instances  bags: {', '.join(info['bags'])}")
    print(f"wrote {args.out}/annotations and images/ (train --coco {args.out}/annotations/instances_train.json "
          f"--images {args.out}/images/train)")
    return 0


def _server_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help="Label Studio address, e.g. http://127.0.0.1:8080")
    parser.add_argument("--api-key", default=None, help="API token (default: $LABEL_STUDIO_API_KEY)")
    parser.add_argument("--project", required=True, help="project title")


def register(sub) -> None:
    """The label verbs (push, pull, serve) and dataset merge."""
    label = sub.add_parser("label", help="round trip through Label Studio: push, pull, serve")
    verbs = label.add_subparsers(dest="label_command", required=True)
    push = verbs.add_parser("push", help="dataset -> Label Studio tasks with our masks as predictions")
    push.add_argument("dataset", help="a bag2coco folder (annotations/, images/)")
    _server_args(push)
    push.add_argument("--kind", default="brush", choices=("brush", "polygon"),
                      help="brush masks (holes kept) or polygons (largest outer contour)")
    push.add_argument("--storage", default="auto", choices=("auto", "local", "upload"),
                      help="local: the server reads our files (needs --document-root); upload: copy them in")
    push.add_argument("--document-root", default=None, help="the server's LOCAL_FILES_DOCUMENT_ROOT")
    push.add_argument("--model-version", default=None, help="default: the dataset's model name:sha256 prefix")
    push.add_argument("--quiet", action="store_true")
    push.set_defaults(func=cmd_push)
    pull = verbs.add_parser("pull", help="reviewed tasks -> COCO with provenance + review report")
    _server_args(pull)
    pull.add_argument("--out", required=True, help="dataset folder to write")
    pull.add_argument("--include-unreviewed", action="store_true", help="also write images nobody reviewed")
    pull.add_argument("--json", action="store_true", help="print the review report as JSON")
    pull.set_defaults(func=cmd_pull)
    serve = verbs.add_parser("serve", help="a Label Studio ML backend serving the model")
    segmenter_args(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9090)
    serve.add_argument("--url", default=None, help="Label Studio address to read task images from")
    serve.add_argument("--api-key", default=None, help="its API token (default: $LABEL_STUDIO_API_KEY)")
    serve.add_argument("--local-files-root", default=None, help="read /data/local-files images from here")
    serve.set_defaults(func=cmd_serve)
    dataset = sub.add_parser("dataset", help="dataset verbs: merge")
    dverbs = dataset.add_subparsers(dest="dataset_command", required=True)
    merge = dverbs.add_parser("merge", help="several datasets -> one COCO set train reads")
    merge.add_argument("datasets", nargs="+", help="dataset folders (bag2coco exports, label pull outputs)")
    merge.add_argument("--out", required=True)
    merge.set_defaults(func=cmd_merge)
