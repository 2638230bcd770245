"""Train CompactSeg on COCO instance data, CPU or CUDA, with validation mask AP every epoch.

A run directory holds ``last.pt`` (everything needed to resume), ``best.pt`` (highest val
segm AP) and ``metrics.jsonl`` (one line per epoch). Checkpoints hold only tensors and
plain data, so they load with ``torch.load(weights_only=True)``; ``model`` in a checkpoint is
the EMA of the weights, the one to deploy. The same seed, data and settings give the same
sequence of batches and augmentations; resuming continues that sequence from the next epoch.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import cv2
import numpy as np
import torch

from robot_instseg.dataset.coco_check import load_checked_coco
from robot_instseg.dataset.evaluate import evaluate_detections
from robot_instseg.engine.decoders.yolo_seg import AMODAL_OUTPUT, YoloSegDecoder
from robot_instseg.engine.postprocess import PostprocessSettings
from robot_instseg.engine.types import Detections
from robot_instseg.train.augment import AugmentConfig, describe_augment
from robot_instseg.train.augment_basic import BasicAugmentConfig, augment_with
from robot_instseg.train.dataset import CocoSegDataset, DatasetSource, Sample
from robot_instseg.train.export import AMODAL_MASK_THRESHOLD, load_checkpoint, model_config_of
from robot_instseg.train.from_onnx import compactseg_from_onnx, reopen_batch_norms
from robot_instseg.train.loss import LossConfig, SegLoss, Target
from robot_instseg.train.model import CompactSeg, ModelConfig, count_parameters, input_hw
from robot_instseg.train.runtime import ModelEMA, autocast_dtype, pick_device

LOG = logging.getLogger(__name__)
PROTO_STRIDE = 4


@dataclass
class TrainConfig:
    """Everything a training run needs: data, schedule, model size, device and outputs."""

    train: list[DatasetSource]
    val: Optional[DatasetSource] = None
    out: Path = Path("runs/train")
    epochs: int = 30
    batch: int = 16
    imgsz: tuple[int, int] = (288, 384)
    width: int = 32
    num_masks: int = 32
    lr: float = 2e-3
    final_lr_fraction: float = 0.02
    weight_decay: float = 5e-4
    warmup_iters: int = 200
    ema_decay: float = 0.999
    seed: int = 0
    device: str = "auto"
    threads: Optional[int] = None
    max_iters: Optional[int] = None  # stop early (smoke tests); None = full epochs
    val_limit: Optional[int] = None  # images of the val set to score each epoch
    train_limit: Optional[int] = None
    resume: bool = False
    init: Optional[Path] = None  # fine-tune: start from this checkpoint's weights, fresh optimizer and schedule
    amodal: bool = False  # the amodal head, learnt from annotations' amodal_segmentation
    amp: str = "auto"  # "auto" (bfloat16 autocast), "bf16" or "off"
    augment: Union[AugmentConfig, BasicAugmentConfig] = field(default_factory=AugmentConfig)  # full or basic
    loss: LossConfig = field(default_factory=LossConfig)
    progress: bool = True

    def describe(self) -> dict:
        """Plain data for the checkpoint and the log."""
        out = asdict(self)
        out["train"] = [{"coco": str(s.coco), "images": str(s.images)} for s in self.train]
        out["val"] = {"coco": str(self.val.coco), "images": str(self.val.images)} if self.val else None
        out["out"] = str(self.out)
        out["init"] = str(self.init) if self.init is not None else None
        out["imgsz"] = list(self.imgsz)
        out["augment"] = describe_augment(self.augment)
        return out


def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """Tight xyxy boxes (pixel edges) of (n, H, W) bool masks."""
    out = np.zeros((len(masks), 4), np.float32)
    for i, m in enumerate(masks):
        ys = np.flatnonzero(m.any(1))
        xs = np.flatnonzero(m.any(0))
        out[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return out


def _instances(sample: Sample, amodal: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """(image, masks, classes, amodal masks) as the augmentations take them. With ``amodal``, classes become
    (n, 2) rows of (class, has amodal ground truth), so the flag rides through copy-paste and every filter with
    its instance; an image without amodal ground truth lends its visible masks, flagged 0."""
    if not amodal:
        return sample.image, sample.masks, sample.classes, None
    if sample.amodal is None or sample.has_amodal is None:
        flags = np.zeros(len(sample.classes), np.int64)
        return sample.image, sample.masks, np.stack([sample.classes, flags], 1), sample.masks
    return sample.image, sample.masks, np.stack([sample.classes, sample.has_amodal.astype(np.int64)], 1), sample.amodal


def _proto_masks(masks: np.ndarray, hp: int, wp: int) -> np.ndarray:
    """(n, hp, wp) float32 area-averaged masks at prototype resolution."""
    return np.stack([cv2.resize(m.astype(np.float32), (wp, hp), interpolation=cv2.INTER_AREA)
                     for m in masks]) if len(masks) else np.zeros((0, hp, wp), np.float32)


def make_batch(samples: Sequence[Sample], rng: np.random.Generator,
               augment_config: Union[AugmentConfig, BasicAugmentConfig],
               device: torch.device, amodal: bool = False) -> tuple[torch.Tensor, list[Target]]:
    """Augment each sample and build the input tensor and per-image targets (``amodal``: with the whole
    masks the amodal head learns from)."""
    images, targets = [], []
    for k, sample in enumerate(samples):
        def donor(k: int = k) -> Optional[tuple]:  # copy-paste: another sample of the batch
            if len(samples) < 2:
                return None
            return _instances(samples[(k + 1 + int(rng.integers(len(samples) - 1))) % len(samples)], amodal)

        image, masks, classes, whole = _instances(sample, amodal)
        image, masks, classes, whole = augment_with(augment_config, image, masks, classes, rng, donor, amodal=whole)
        flags = None
        if classes.ndim == 2:
            classes, flags = classes[:, 0], classes[:, 1].astype(bool)
        h, w = image.shape[:2]
        hp, wp = h // PROTO_STRIDE, w // PROTO_STRIDE
        images.append(image)
        extra = {}
        if whole is not None and flags is not None:
            extra = {"amodal_proto_masks": torch.from_numpy(_proto_masks(whole | masks, hp, wp)).to(device),
                     "has_amodal": torch.from_numpy(flags).to(device)}
        targets.append(Target(boxes=torch.from_numpy(boxes_from_masks(masks)).to(device),
                              classes=torch.from_numpy(classes.astype(np.int64)).to(device),
                              masks=torch.from_numpy(masks).to(device),
                              proto_masks=torch.from_numpy(_proto_masks(masks, hp, wp)).to(device), **extra))
    batch = torch.from_numpy(np.stack(images)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    return batch, targets


@torch.no_grad()
def predict(model: CompactSeg, samples: Sequence[Sample], device: torch.device, batch: int = 8,
            settings: PostprocessSettings = PostprocessSettings(score_threshold=0.01, iou_threshold=0.6,
                                                                max_detections=100)) -> dict[int, Detections]:
    """Detections per image id through the deployment decoder (same maths as the ONNX path)."""
    decoder = YoloSegDecoder("output0", "output1", model.config.num_masks)
    decoder.amodal = AMODAL_OUTPUT if model.config.amodal else None
    decoder.amodal_margin = model.config.amodal_margin
    decoder.amodal_threshold = AMODAL_MASK_THRESHOLD  # as the export publishes them
    was_training, model.export_mode = model.training, True
    model.eval()
    out: dict[int, Detections] = {}
    try:
        for start in range(0, len(samples), batch):
            chunk = samples[start:start + batch]
            x = torch.from_numpy(np.stack([s.image for s in chunk])).to(device).permute(0, 3, 1, 2).float() / 255
            outputs = [t.float().cpu().numpy() for t in model(x)]
            for i, sample in enumerate(chunk):
                raw = dict(zip(("output0", "output1", AMODAL_OUTPUT), (t[i:i + 1] for t in outputs)))
                out[sample.image_id] = decoder.decode(raw, sample.transform, settings)
    finally:
        model.export_mode = False
        model.train(was_training)
    return out


class Trainer:
    """Trains, validates with COCOeval, and keeps the last and the best weights-only checkpoints."""

    def __init__(self, config: TrainConfig) -> None:
        if config.init is not None and config.resume:  # before the (slow) data caching
            raise ValueError("--init starts a new schedule and --resume continues one: give one of them")
        self.config = config
        self.device = pick_device(config.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.out = Path(config.out)
        config.imgsz = input_hw(config.imgsz)
        # Data first (checked as it loads): a malformed dataset is refused before OUT is created.
        self.train_set = self._load(config.train, None, config.train_limit, "caching train images")
        self.names = self.train_set.names
        self.val_set = self._load([config.val], self.names, config.val_limit, "caching val images") \
            if config.val else None
        self.val_gt = load_checked_coco(config.val.coco) if config.val else None
        if config.amodal and all(sample.amodal is None for sample in self.train_set.samples):
            raise ValueError("--amodal: no training annotation has an amodal_segmentation (scenes writes them)")
        torch.manual_seed(config.seed)
        self.model_config = ModelConfig(num_classes=len(self.names), num_masks=config.num_masks,
                                        width=config.width, imgsz=tuple(config.imgsz), amodal=config.amodal,
                                        amodal_margin=config.loss.amodal_margin)
        self.model = CompactSeg(self.model_config)
        if config.init is not None:
            self._load_weights(Path(config.init))
        self.out.mkdir(parents=True, exist_ok=True)  # only once data and weights are accepted
        self.model = self.model.to(self.device, memory_format=torch.channels_last)
        self.amp_dtype = autocast_dtype(config.amp, self.device)
        self.ema = ModelEMA(self.model, config.ema_decay)
        self.optimizer = self._optimizer()
        self.loss = SegLoss(self.model, config.loss)
        self.start_epoch, self.iteration, self.best_ap = 0, 0, -1.0
        self.iters_per_epoch = math.ceil(len(self.train_set) / config.batch)
        self.total_iters = self.iters_per_epoch * config.epochs
        if config.resume:
            self._resume(self.out / "last.pt")
        LOG.info("CompactSeg %.2f M parameters, %d classes %s, input %s, %d train / %d val images, device %s, "
                 "autocast %s", count_parameters(self.model) / 1e6, len(self.names), self.names, config.imgsz,
                 len(self.train_set), len(self.val_set) if self.val_set else 0, self.device, self.amp_dtype)

    def _load(self, sources, names, limit, desc) -> CocoSegDataset:
        from tqdm import tqdm

        with tqdm(desc=desc, unit="img", disable=not self.config.progress, file=sys.stderr) as bar:
            return CocoSegDataset(sources, self.config.imgsz, names=names, limit=limit, progress=bar.update)

    def _optimizer(self) -> torch.optim.Optimizer:
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            (no_decay if p.ndim <= 1 else decay).append(p)
        return torch.optim.AdamW([{"params": decay, "weight_decay": self.config.weight_decay},
                                  {"params": no_decay, "weight_decay": 0.0}], lr=self.config.lr)

    def learning_rate(self, iteration: int) -> float:
        """Linear warm-up, then cosine down to ``final_lr_fraction`` of the peak."""
        cfg = self.config
        if iteration < cfg.warmup_iters:
            return cfg.lr * (iteration + 1) / cfg.warmup_iters
        progress = (iteration - cfg.warmup_iters) / max(1, self.total_iters - cfg.warmup_iters)
        floor = cfg.final_lr_fraction
        return cfg.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))

    # -- checkpoints -----------------------------------------------------------------------
    def checkpoint(self, epoch: int, metrics: dict) -> dict:
        return {"model": self.ema.ema.state_dict(), "config": self.model_config.to_dict(), "names": list(self.names),
                "train_model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "ema_updates": self.ema.updates, "epoch": epoch, "iteration": self.iteration,
                "best_ap": self.best_ap, "metrics": metrics, "train_config": self.config.describe()}

    def _checkpoint_for_this_data(self, path: Path, flag: str) -> dict:
        """The checkpoint at ``path`` (weights-only), refused when missing or trained on other classes."""
        if not path.is_file():
            raise FileNotFoundError(f"{flag}: no checkpoint {path}")
        state = load_checkpoint(path)
        self._refuse_other_classes(path, list(state["names"]), flag)
        return state

    def _refuse_other_classes(self, path: Path, names: list[str], flag: str) -> None:
        if names != list(self.names):
            raise ValueError(f"{flag}: {path} was trained on classes {names}, the data has {self.names}")

    def _refuse_other_network(self, path: Path, theirs: ModelConfig) -> None:
        """Refuse a network other than this run's; one without the amodal head may start a run with it, and the
        box its whole masks were learnt in (``amodal_margin``, not a weight) may change."""
        theirs = dataclasses.replace(theirs, amodal_margin=self.model_config.amodal_margin)
        if theirs != self.model_config and theirs != dataclasses.replace(self.model_config, amodal=False):
            raise ValueError(f"--init: {path} is a network {theirs.to_dict()}, this run builds "
                             f"{self.model_config.to_dict()} (same --width and --imgsz as the checkpoint)")

    def _load_weights(self, path: Path) -> None:
        """Fine-tuning: the (EMA) weights of another run's checkpoint, for the same classes and network;
        the EMA then starts from them too."""
        if path.suffix.lower() == ".onnx":
            self._load_onnx_weights(path)
            return
        state = self._checkpoint_for_this_data(path, "--init")
        self._refuse_other_network(path, model_config_of(state))
        self._load_state(state["model"])
        LOG.info("initialised from the weights of %s (epoch %d of its run)", path, int(state["epoch"]) + 1)

    def _load_state(self, state: dict) -> None:
        """Weights into this run's model; a head it lacks (amodal) starts from the visible coefficients."""
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if unexpected or any(".amodal." not in name for name in missing):
            self.model.load_state_dict(state)  # raises, naming what differs
        if missing:
            for head in self.model.heads:
                head.start_amodal_from_visible()
            LOG.info("the amodal head starts from the visible mask coefficients")

    def _load_onnx_weights(self, path: Path, calibration_images: int = 64) -> None:
        """Fine-tuning a shipped model: the weights of our own ONNX export (the bundled model), its batch
        norms re-opened on the first training images (``from_onnx``)."""
        if not path.is_file():
            raise FileNotFoundError(f"--init: no model {path}")
        model, names = compactseg_from_onnx(path)
        self._refuse_other_classes(path, names, "--init")
        self._refuse_other_network(path, model.config)
        samples = [self.train_set[i] for i in range(min(calibration_images, len(self.train_set)))]
        batches = [torch.from_numpy(np.stack([s.image for s in samples[k:k + self.config.batch]]))
                   .permute(0, 3, 1, 2).float().div_(255.0) for k in range(0, len(samples), self.config.batch)]
        seen = reopen_batch_norms(model, batches)
        self._load_state(model.state_dict())
        LOG.info("initialised from the weights of %s (batch norms re-opened on %d training images)", path, seen)

    def _resume(self, path: Path) -> None:
        state = self._checkpoint_for_this_data(path, "--resume")
        self.model.load_state_dict(state["train_model"])
        self.ema.ema.load_state_dict(state["model"])
        self.ema.updates = int(state["ema_updates"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.start_epoch, self.iteration = int(state["epoch"]) + 1, int(state["iteration"])
        self.best_ap = float(state["best_ap"])
        LOG.info("resumed %s at epoch %d (iteration %d)", path, self.start_epoch, self.iteration)

    # -- loop ------------------------------------------------------------------------------
    def validate(self) -> dict:
        if not self.val_set:
            return {}
        detections = predict(self.ema.ema, self.val_set.samples, self.device)
        metrics = evaluate_detections(self.val_gt, detections, self.names)
        if self.model_config.amodal and all("amodal_segmentation" in a for a in self.val_gt.dataset["annotations"]):
            from robot_instseg.dataset.amodal_eval import amodal_report
            from robot_instseg.dataset.evaluate import category_map, results_for

            published = {i: d.visible_masks() for i, d in detections.items()}
            report = amodal_report(self.val_gt, results_for(published, category_map(self.val_gt, self.names)),
                                   published)
            metrics.update(amodal_AP=report["amodal_AP"], amodal_AP50=report["amodal_AP50"],
                           order_accuracy=report["occlusion"]["order_accuracy"])
        return metrics

    def fit(self) -> dict:
        from tqdm import tqdm

        cfg = self.config
        metrics: dict = {}
        started = time.monotonic()
        for epoch in range(self.start_epoch, cfg.epochs):
            rng = np.random.default_rng([cfg.seed, epoch])
            order = rng.permutation(len(self.train_set))
            self.model.train()
            bar = tqdm(range(self.iters_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="it",
                       disable=not cfg.progress, file=sys.stderr)
            sums = {"cls": 0.0, "box": 0.0, "mask": 0.0, **({"amodal": 0.0} if self.model_config.amodal else {})}
            steps = 0
            for step in bar:
                if cfg.max_iters is not None and self.iteration >= cfg.max_iters:
                    break
                idx = order[step * cfg.batch:(step + 1) * cfg.batch]
                images, targets = make_batch([self.train_set[i] for i in idx], rng, cfg.augment, self.device,
                                             self.model_config.amodal)
                for group in self.optimizer.param_groups:
                    group["lr"] = self.learning_rate(self.iteration)
                with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                                    enabled=self.amp_dtype is not None):
                    raw, protos = self.model(images.contiguous(memory_format=torch.channels_last))
                raw = [[t.float() for t in level] for level in raw]
                total, parts = self.loss(raw, protos.float(), targets)
                if not torch.isfinite(total):
                    raise FloatingPointError(f"loss became {float(total)} at iteration {self.iteration}")
                self.optimizer.zero_grad(set_to_none=True)
                total.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 10.0)
                self.optimizer.step()
                self.ema.update(self.model)
                self.iteration += 1
                steps += 1
                for k in sums:
                    sums[k] += parts[k]
                bar.set_postfix({k: f"{v / steps:.3f}" for k, v in sums.items()})
            bar.close()
            metrics = {"epoch": epoch + 1, "iteration": self.iteration,
                       "elapsed_s": round(time.monotonic() - started, 1),
                       **{f"loss_{k}": round(v / max(steps, 1), 4) for k, v in sums.items()}}
            metrics.update({k: round(v, 4) for k, v in self.validate().items()})
            improved = metrics.get("AP", 0.0) > self.best_ap
            if improved:
                self.best_ap = metrics.get("AP", 0.0)
            state = self.checkpoint(epoch, metrics)
            torch.save(state, self.out / "last.pt")
            if improved or not self.val_set:
                torch.save(state, self.out / "best.pt")
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(metrics) + "\n")
            LOG.info("epoch %d: %s", epoch + 1, ", ".join(f"{k} {v}" for k, v in metrics.items() if k != "epoch"))
            if cfg.max_iters is not None and self.iteration >= cfg.max_iters:
                break
        return metrics
