"""``robot-instseg play`` and ``demo``: drive a live node (publish frames, watch it work)."""

from __future__ import annotations

import argparse
from pathlib import Path

from robot_instseg.cli.common import CliError


def cmd_play(args: argparse.Namespace) -> int:
    """`robot-instseg play`: publish frames from a folder, video, bag or scenes as a camera."""
    from robot_instseg.io.frame_sources import open_source
    from robot_instseg.ros.tools.play import PlayOptions, run_play

    depth = not args.no_depth and args.source.startswith("scenes")
    if args.cameras < 1:
        raise CliError(f"--cameras must be at least 1, got {args.cameras}")
    if args.cameras > 1:
        args.depth_topic, args.camera_info_topic = _camera_topics(args)
    frames = open_source(args.source, bag_topic=args.bag_topic, scene_count=args.count, scene_depth=depth)
    options = PlayOptions(topic=args.topic, rate_hz=args.rate, encoding=args.encoding, compressed=args.compressed,
                          frame_id=args.frame_id, reliability=args.reliability, duration_s=args.duration,
                          max_frames=args.frames, loop=args.loop or args.source.startswith("scenes"),
                          depth_topic=args.depth_topic if depth else None,
                          camera_info_topic=args.camera_info_topic if depth else None)
    sent = run_play(frames, options, wait_s=args.wait, cameras=args.cameras)
    where = args.topic if args.cameras == 1 else f"{args.topic} for cameras cam0..cam{args.cameras - 1}"
    print(f"published {sent} frames on {where}")
    return 0


def _camera_topics(args: argparse.Namespace) -> tuple[str, str]:
    """Depth and CameraInfo topics for several cameras: as given when they hold {camera}, else beside the image
    topic (.../{camera}/image -> .../{camera}/depth, .../{camera}/camera_info); CliError when neither works."""
    if "{camera}" not in args.topic:
        raise CliError(f"--cameras {args.cameras}: --topic must hold {{camera}} (e.g. /seg_node/{{camera}}/image), "
                       f"got {args.topic}")
    topics = []
    for given, leaf in ((args.depth_topic, "depth"), (args.camera_info_topic, "camera_info")):
        if "{camera}" in given:
            topics.append(given)
        elif args.topic.endswith("/image"):
            topics.append(args.topic[:-len("image")] + leaf)
        else:
            raise CliError(f"--cameras {args.cameras}: give --{leaf.replace('_', '-')}-topic with {{camera}} "
                           "(or an image topic ending in /image)")
    return topics[0], topics[1]


def cmd_demo(args: argparse.Namespace) -> int:
    """`robot-instseg demo`: start a node, play scenes into it and write what it published."""
    from robot_instseg.ros.tools.demo import run_demo

    if args.cameras < 1:
        raise CliError(f"--cameras must be at least 1, got {args.cameras}")
    return run_demo(args.model, Path(args.out), rate_hz=args.rate, duration_s=args.duration, overlays=args.overlays,
                    cameras=args.cameras)


def register(sub) -> None:
    """Add this module's verbs to the ``robot-instseg`` parser."""
    play = sub.add_parser("play", help="publish images, a video, a bag or synthetic scenes as a camera would")
    play.add_argument("source", help="folder of images, video file, bag (folder or .mcap/.db3), or scenes[:SEED]")
    play.add_argument("--topic", default="/camera/image_raw",
                      help="with --cameras N, a pattern holding {camera}: /seg_node/{camera}/image")
    play.add_argument("--cameras", type=int, default=1,
                      help="publish as N free-running cameras cam0..camN-1 (each its own scenes order and thread)")
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
    play.add_argument("--depth-topic", default="/camera/aligned_depth_to_color/image_raw",
                      help="scenes: where their registered depth (16UC1 mm) is published")
    play.add_argument("--camera-info-topic", default="/camera/color/camera_info",
                      help="scenes: where the colour camera's CameraInfo is published")
    play.add_argument("--no-depth", action="store_true", help="scenes: publish colour only")
    play.set_defaults(func=cmd_play)

    demo = sub.add_parser("demo", help="seg_node + bundled model + synthetic camera, watched live (stops itself)")
    demo.add_argument("--model", default=None, help="default: the bundled model")
    demo.add_argument("--out", default="demo_out", help="overlay PNGs and the node's log")
    demo.add_argument("--rate", type=float, default=15.0)
    demo.add_argument("--duration", type=float, default=20.0)
    demo.add_argument("--overlays", type=int, default=4)
    demo.add_argument("--cameras", type=int, default=1, help="one node serving N RGB-D cameras cam0..camN-1")
    demo.set_defaults(func=cmd_demo)
