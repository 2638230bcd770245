"""``robot-instseg scenes``, ``train`` and ``export``: data, a model, and its verified ONNX."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robot_instseg.cli.common import CliError
from robot_instseg.synthetic.scenes import MIN_VISIBLE_FRACTION
from robot_instseg.synthetic.style import STYLES


def cmd_scenes(args: argparse.Namespace) -> int:
    """`robot-instseg scenes`: write a synthetic COCO dataset."""
    from tqdm import tqdm

    from robot_instseg.synthetic.dataset import write_dataset

    if not 0.0 <= args.min_visible <= 1.0:
        raise CliError(f"--min-visible must be a fraction from 0 to 1, got {args.min_visible}")
    if args.sequence and args.min_visible != MIN_VISIBLE_FRACTION:
        raise CliError("--min-visible applies to scenes; --sequence clips already pass objects behind each other "
                       "down to any visible fraction")
    if args.sequence:
        from robot_instseg.synthetic.sequences import write_sequences

        with tqdm(total=args.count * args.frames, desc="frames", unit="img", disable=args.quiet,
                  file=sys.stderr) as bar:
            path = write_sequences(Path(args.out), args.count, args.seed, args.frames, args.objects, args.height,
                                   args.width, progress=bar.update, style=args.style)
        print(f"wrote {args.count} clips of {args.frames} frames to {Path(args.out) / 'images'} and {path}")
        return 0
    with tqdm(total=args.count, desc="scenes", unit="img", disable=args.quiet, file=sys.stderr) as bar:
        path = write_dataset(Path(args.out), args.count, args.seed, args.height, args.width, progress=bar.update,
                             depth=args.depth, style=args.style, min_visible=args.min_visible)
    print(f"wrote {args.count} scenes to {Path(args.out) / 'images'} and {path}"
          + (f", depth (16UC1 mm) to {Path(args.out) / 'depth'}" if args.depth else ""))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """`robot-instseg train`: train the compact model on a COCO dataset."""
    from robot_instseg.train.dataset import DatasetSource
    from robot_instseg.train.trainer import TrainConfig, Trainer

    if len(args.coco) != len(args.images):
        raise CliError("give one --images folder for each --coco file")
    if (args.val_coco is None) != (args.val_images is None):
        raise CliError("--val-coco and --val-images go together")
    if args.augment_preview is not None:
        return _augment_preview(args)
    config = TrainConfig(
        train=[DatasetSource(Path(c), Path(i)) for c, i in zip(args.coco, args.images)],
        val=DatasetSource(Path(args.val_coco), Path(args.val_images)) if args.val_coco else None,
        out=Path(args.out), epochs=args.epochs, batch=args.batch, imgsz=tuple(args.imgsz), width=args.width,
        lr=args.lr, seed=args.seed, device=args.device, threads=args.threads, max_iters=args.max_iters,
        train_limit=args.limit, val_limit=args.val_limit, resume=args.resume, amp=args.amp,
        init=Path(args.init) if args.init else None, amodal=args.amodal, loss=loss_config(args),
        progress=not args.quiet, augment=augment_recipe(args))
    trainer = Trainer(config)
    metrics = trainer.fit()
    print(f"trained {trainer.iteration} iterations; checkpoints in {config.out} (best.pt, last.pt); "
          f"last epoch: " + json.dumps(metrics))
    return 0


AUGMENT_RECIPES = ("full", "basic", "off")


def loss_config(args: argparse.Namespace):
    """The loss weights, with the amodal ones the flags set."""
    from robot_instseg.train.loss import LossConfig

    changes = {name: value for name, value in (("amodal_weight", args.amodal_weight),
                                               ("amodal_hidden_weight", args.amodal_hidden_weight),
                                               ("amodal_margin", args.amodal_margin))
               if value is not None}
    if any(v < 0 for v in changes.values()):
        raise CliError(f"--amodal-weight, --amodal-hidden-weight and --amodal-margin must not be negative, got {changes}")
    return LossConfig(**changes)


def augment_recipe(args: argparse.Namespace):
    """The augmentation config ``--augment`` names."""
    from robot_instseg.train.augment import AugmentConfig
    from robot_instseg.train.augment_basic import BasicAugmentConfig

    return {"full": AugmentConfig, "basic": BasicAugmentConfig, "off": AugmentConfig.off}[args.augment]()


def _augment_preview(args: argparse.Namespace) -> int:
    """`train --augment-preview N`: write OUT/augment_preview.png and train nothing."""
    from robot_instseg.train.dataset import CocoSegDataset, DatasetSource
    from robot_instseg.train.model import input_hw
    from robot_instseg.train.preview import write_augment_preview

    if args.augment_preview < 1:
        raise CliError(f"--augment-preview needs at least 1 sample, got {args.augment_preview}")
    sources = [DatasetSource(Path(c), Path(i)) for c, i in zip(args.coco, args.images)]
    dataset = CocoSegDataset(sources, input_hw(tuple(args.imgsz)), limit=args.limit or 200)
    config = augment_recipe(args)
    path = write_augment_preview(Path(args.out) / "augment_preview.png", dataset.samples, dataset.names,
                                 args.augment_preview, config, args.seed)
    print(f"wrote {args.augment_preview} augmented samples to {path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """`robot-instseg export`: a training checkpoint (weights only) to an ONNX model; with --dynamic-batch, also
    an existing ONNX export (ours or Ultralytics') to one with a batch axis."""
    from robot_instseg.engine.batch_axis import with_dynamic_batch

    source, out = Path(args.checkpoint), Path(args.out)
    if source.suffix == ".onnx":
        if not args.dynamic_batch:
            raise CliError(f"{source} is already ONNX; add --dynamic-batch to give it a batch axis")
        with_dynamic_batch(source, out)
        print(f"wrote {out} with a dynamic batch axis; a batch of 2 equals its frames run alone")
        return 0
    from robot_instseg.train.export import export_checkpoint

    out = export_checkpoint(source, out, args.imgsz)
    print(f"exported {out}; onnxruntime output matches PyTorch")
    if args.dynamic_batch:
        with_dynamic_batch(out, out)
        print(f"{out}: batch axis dynamic; a batch of 2 equals its frames run alone")
    return 0


def register(sub) -> None:
    """Add this module's verbs to the ``robot-instseg`` parser."""
    scenes = sub.add_parser("scenes", help="synthetic tabletop scenes with exact instance masks (COCO)")
    scenes.add_argument("--out", required=True, help="writes OUT/images/*.png and OUT/annotations.json")
    scenes.add_argument("--count", type=int, required=True)
    scenes.add_argument("--seed", type=int, required=True)
    scenes.add_argument("--width", type=int, default=640)
    scenes.add_argument("--height", type=int, default=480)
    scenes.add_argument("--style", default="default", choices=STYLES,
                        help="look of the scenes: default; randomised (domain randomisation for training: "
                             "backgrounds, light, shadows, proportions, blur, compression); heldout (a look "
                             "training never uses, for out-of-domain evaluation)")
    scenes.add_argument("--min-visible", type=float, default=MIN_VISIBLE_FRACTION, metavar="FRACTION",
                        help="every object keeps at least this fraction of itself visible (default "
                             f"{MIN_VISIBLE_FRACTION}); lower it, e.g. 0.1, for clutter where objects hide each other "
                             "down to a sliver, as they do when things pass behind each other in a robot's view")
    scenes.add_argument("--depth", action="store_true",
                        help="also OUT/depth/*.png (sensor depth, 16UC1 mm), OUT/depth_truth/*.png and intrinsics")
    scenes.add_argument("--sequence", action="store_true",
                        help="--count clips with persistent object ids (COCO-video style, track_id) instead of scenes")
    scenes.add_argument("--frames", type=int, default=150, help="--sequence: frames per clip (some are dropped)")
    scenes.add_argument("--objects", type=int, default=10, help="--sequence: objects per clip")
    scenes.add_argument("--quiet", action="store_true")
    scenes.set_defaults(func=cmd_scenes)

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
                       help="bfloat16 autocast (auto: where the CPU or GPU runs bf16 natively; bf16: always; off)")
    train.add_argument("--max-iters", type=int, default=None, help="stop after this many iterations")
    train.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    train.add_argument("--val-limit", type=int, default=None)
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    train.add_argument("--init", default=None, metavar="MODEL",
                       help="fine-tune: start from the weights of MODEL with a new optimizer and --epochs schedule: "
                            "a best.pt or last.pt of the same classes and network (loaded weights-only), or one of "
                            "our ONNX exports such as models/instseg_tabletop.onnx (its weights read back)")
    train.add_argument("--amodal", action="store_true",
                       help="the amodal head: each instance's whole mask, occluded parts included, learnt from the "
                            "annotations' amodal_segmentation (scenes writes it); --init may name a model without it")
    train.add_argument("--amodal-weight", type=float, default=None, metavar="W",
                       help="--amodal: weight of the whole-mask term (default 4)")
    train.add_argument("--amodal-hidden-weight", type=float, default=None, metavar="W",
                       help="--amodal: how much more a whole mask's hidden pixels weigh than the rest (default 5)")
    train.add_argument("--amodal-margin", type=float, default=None, metavar="M",
                       help="--amodal: a whole mask is learnt, and decoded, in the visible box grown by M of its width "
                            "and height per side (default 0.5; the export's amodal_margin metadata)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.add_argument("--augment", choices=AUGMENT_RECIPES, default="full",
                       help="full: the issue-17 recipe (albumentations, copy-paste; README 'Train'); basic: flip, "
                            "affine, HSV, blur and noise, as the bundled model was trained; off: none")
    train.add_argument("--augment-preview", type=int, default=None, metavar="N",
                       help="write OUT/augment_preview.png with N augmented samples and their masks, then stop")
    train.set_defaults(func=cmd_train)

    export = sub.add_parser("export", help="checkpoint -> ONNX (checked against PyTorch); ONNX -> batch axis")
    export.add_argument("checkpoint", help="a best.pt / last.pt, or an .onnx with --dynamic-batch")
    export.add_argument("--out", required=True)
    export.add_argument("--imgsz", type=int, nargs="+", default=None, metavar="N",
                        help="input size: one side of a square, or height width (default: the training size)")
    export.add_argument("--dynamic-batch", action="store_true",
                        help="a dynamic batch axis, so one node batches the frames of several cameras (max_batch); "
                             "checked: a batch of 2 must equal its frames run alone, bit for bit")
    export.set_defaults(func=cmd_export)
