"""``robot-instseg bag2coco``: robot bags -> a COCO dataset of images plus the model's predictions
as pre-annotations (RLE masks), ready for correction in CVAT or Label Studio.

Read with rosbags only (no ROS install). Per bag: frames of one image topic, every
``stride``-th, minus blurred ones (variance of the Laplacian) and near-duplicates of the last
frame kept (mean absolute difference of small grey thumbnails). Predictions come from the
InstanceArray recorded with each frame (same stamp), or from a model when a bag has none
(or when asked). Whole bags go to train, val or test, never one bag to two splits, since
neighbouring frames of one bag are near-copies and would leak between splits.
"""

from __future__ import annotations

import json
import random
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from robot_instseg.dataset.dataset_files import write_split_files
from robot_instseg.dataset.mask_qa import ALL_FLAGS, TemporalCheck, mask_flags
from robot_instseg.engine.errors import InputError
from robot_instseg.engine.frame_pipeline import segment_frame
from robot_instseg.io.frame_sources import IMAGE_TYPES, message_fields, open_bag
from robot_instseg.io.image_encodings import decode_fields
from robot_instseg.io.overlay import write_mosaic
from robot_instseg.offline.jobs import ModelSpec
from robot_instseg.offline.unit_runner import RayOptions, UnitError, run_units
from robot_instseg.offline.work_units import WorkUnit
from robot_instseg.recording.bag_writer import sidecar_custom_data
from robot_instseg.tracking.tracker import Tracker

INSTANCE_ARRAY = "robot_instseg_msgs/msg/InstanceArray"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ExportConfig:
    """How bags become a COCO dataset: topics, frame selection, splits and image format."""

    image_topic: Optional[str] = None  # None: the bag's first image topic
    instances_topic: Optional[str] = None  # None: the bag's first InstanceArray topic
    stride: int = 1
    min_sharpness: float = 30.0  # variance of the Laplacian below this = blurred; 0 disables
    dedup_threshold: float = 0.01  # mean |difference| / 255 of 64x48 thumbnails below this = duplicate; 0 disables
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    image_format: str = "jpg"
    mosaic_tiles: int = 16


@dataclass
class BagStats:
    """What one bag contributed: frames read, kept, and why the others were dropped."""

    bag: str
    split: str
    frames: int = 0
    kept: int = 0
    skipped: dict = field(default_factory=lambda: {"stride": 0, "blurred": 0, "duplicate": 0, "undecodable": 0})
    predicted_by: dict = field(default_factory=lambda: {"recorded": 0, "model": 0, "none": 0})
    annotations: int = 0


def assign_splits(bags: Sequence[Path], ratios: Sequence[float], seed: int = 0) -> dict[str, str]:
    """bag name -> split, whole bags only; shuffled by ``seed``; every non-zero split gets a bag
    when there are enough bags, train first."""
    names = sorted(Path(b).name for b in bags)
    if len(set(names)) != len(names):
        raise ValueError("two bags share a name; splits are by bag name, rename one")
    random.Random(seed).shuffle(names)
    n, total = len(names), float(sum(ratios))
    val, test = int(round(n * ratios[1] / total)), int(round(n * ratios[2] / total))
    if ratios[1] > 0 and val == 0 and n - test >= 2:  # a wanted split gets a bag while train keeps one
        val = 1
    if ratios[2] > 0 and test == 0 and n - val >= 2:
        test = 1
    counts = [n - val - test, val, test]
    out, start = {}, 0
    for split, count in zip(SPLITS, counts):
        for name in names[start:start + count]:
            out[name] = split
        start += count
    return out


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian on a 640-px-wide copy (so the threshold does not depend on size)."""
    scale = 640.0 / gray.shape[1]
    small = cv2.resize(gray, (640, max(1, int(round(gray.shape[0] * scale)))), interpolation=cv2.INTER_AREA) \
        if scale < 1 else gray
    return float(cv2.Laplacian(small, cv2.CV_64F).var())


def thumbnail(gray: np.ndarray) -> np.ndarray:
    """A small grey image of a frame, for near-duplicate detection."""
    return cv2.resize(gray, (64, 48), interpolation=cv2.INTER_AREA).astype(np.float32)


def instance_masks(msg, height: int, width: int) -> list[tuple[int, str, float, np.ndarray, int]]:
    """(class_id, class_name, score, full-frame bool mask, track_id) of each instance of an InstanceArray."""
    out = []
    for inst in msg.instances:
        m = inst.mask
        full = np.zeros((height, width), bool)
        if m.width and m.height:
            crop = np.frombuffer(bytes(m.data), np.uint8).reshape(m.height, m.step)[:, :m.width] > 0
            x, y = int(inst.bbox.x_offset), int(inst.bbox.y_offset)
            full[y:y + m.height, x:x + m.width] = crop[:max(0, height - y), :max(0, width - x)]
        out.append((int(inst.class_id), str(inst.class_name), float(inst.score), full, int(inst.track_id)))
    return out


def bag_custom_data(bag: Path) -> dict:
    """The custom data a bag was written with (model, classes): metadata.yaml's custom_data, else
    our sidecar (a repaired or half-written bag); {} when neither says anything."""
    import yaml

    folder = bag if bag.is_dir() else bag.parent
    try:
        info = yaml.safe_load((folder / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        if info.get("custom_data"):
            return dict(info["custom_data"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        pass
    try:
        return sidecar_custom_data(folder)
    except (OSError, ValueError, AttributeError):
        return {}


def model_version(path: str, sha256: str) -> str:
    """How a model is named on pre-annotations: file name and the first 12 hex of its sha256."""
    return f"{Path(path).name}:{sha256[:12]}" if sha256 else Path(path).name


def model_version_of(path) -> str:
    """``model_version`` of a model file on disk."""
    from robot_instseg.engine.model_paths import model_sha256

    return model_version(str(path), model_sha256(Path(path)))


def mask_fields(mask: np.ndarray) -> dict:
    """An annotation's segmentation (RLE), area and bbox for a full-frame bool mask."""
    rle = rle_of(mask)
    return {"segmentation": rle, "area": float(mask_utils.area(rle)),
            "bbox": [float(v) for v in mask_utils.toBbox(rle)]}


def rle_of(mask: np.ndarray) -> dict:
    """The COCO RLE of a binary mask, with counts as text (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


class Categories:
    """COCO categories by class name, ids = class id + 1 as the model numbers them."""

    def __init__(self) -> None:
        self.by_name: dict[str, int] = {}

    def add_model_classes(self, names: Sequence[str]) -> None:
        for class_id, name in enumerate(names):
            self.id_for(class_id, name)

    def id_for(self, class_id: int, name: str) -> int:
        name = name or str(class_id)
        if name not in self.by_name:
            wanted = class_id + 1
            self.by_name[name] = wanted if wanted not in self.by_name.values() else max(self.by_name.values()) + 1
        return self.by_name[name]

    def coco(self) -> list[dict]:
        return [{"id": i, "name": n, "supercategory": "object"} for n, i in sorted(self.by_name.items(),
                                                                                  key=lambda kv: kv[1])]


def _pick(connections, types: Sequence[str], wanted: Optional[str], what: str, bag: Path, required: bool):
    found = [c for c in connections if c.msgtype in types and (wanted is None or c.topic == wanted)]
    if not found:
        if required:
            listing = ", ".join(sorted({f"{c.topic} ({c.msgtype})" for c in connections}))
            raise ValueError(f"{bag}: no {what}{f' {wanted}' if wanted else ''} (topics: {listing})")
        return None
    return found[0]


@dataclass
class BagStart:
    """First item of a bag's export: what the bag says of itself (model, classes)."""

    bag: str
    custom: dict


@dataclass
class KeptFrame:
    """One frame kept for the dataset: its image file (encoded), its COCO image entry without an id, and its
    instances (class id, class name, score, mask fields, track id, QA flags)."""

    name: str
    encoded: bytes
    image: dict
    instances: list


@dataclass
class BagDone:
    """Last item of a bag's export: its counts."""

    stats: BagStats


@dataclass(frozen=True)
class BagExportJob:
    """One bag's frame selection and predictions, where a worker runs it (a unit = a whole bag: frame selection
    is a chain, each kept frame compared with the last one kept)."""

    config: ExportConfig
    splits: dict
    repredict: bool
    model: Optional[ModelSpec] = None

    def setup(self):
        return self.model.load() if self.model is not None else None

    def process(self, segmenter, unit: WorkUnit) -> Iterator:
        return bag_items(Path(unit.path), self.splits[Path(unit.path).name], self.config, segmenter, self.repredict)


def bag_items(bag: Path, split: str, config: ExportConfig, segmenter=None, repredict: bool = False) -> Iterator:
    """BagStart, a KeptFrame per frame kept, then BagDone: one bag's share of the dataset, in bag order."""
    bs = BagStats(bag=str(bag), split=split)
    tracker = Tracker()  # a bag's frames are one camera's sequence (track ids are per bag)
    temporal = TemporalCheck()
    with closing(open_bag(bag)) as reader:
        yield BagStart(str(bag), bag_custom_data(bag))
        image_conn = _pick(reader.connections, IMAGE_TYPES, config.image_topic, "image topic", bag, True)
        inst_conn = None if repredict else _pick(reader.connections, (INSTANCE_ARRAY,), config.instances_topic,
                                                 "InstanceArray topic", bag, False)
        recorded: dict[tuple[int, int], object] = {}
        if inst_conn is not None:
            for c, _, data in reader.messages(connections=[inst_conn]):
                msg = reader.deserialize(data, c.msgtype)
                recorded[(int(msg.header.stamp.sec), int(msg.header.stamp.nanosec))] = msg
        last_thumb = None
        for index, (c, _, data) in enumerate(reader.messages(connections=[image_conn])):
            bs.frames += 1
            if index % max(1, config.stride):
                bs.skipped["stride"] += 1
                continue
            msg = reader.deserialize(data, c.msgtype)
            try:
                image, order = decode_fields(c.msgtype, message_fields(msg, c.msgtype))
            except InputError:
                bs.skipped["undecodable"] += 1
                continue
            rgb = image if image.ndim == 2 or order == "rgb" else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            if rgb.ndim == 2:
                rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            if config.min_sharpness > 0 and sharpness(gray) < config.min_sharpness:
                bs.skipped["blurred"] += 1
                continue
            thumb = thumbnail(gray)
            if config.dedup_threshold > 0 and last_thumb is not None and thumb.shape == last_thumb.shape \
                    and float(np.abs(thumb - last_thumb).mean()) / 255.0 < config.dedup_threshold:
                bs.skipped["duplicate"] += 1
                continue
            last_thumb = thumb
            stamp = (int(msg.header.stamp.sec), int(msg.header.stamp.nanosec))
            h, w = rgb.shape[:2]
            instances = None
            if stamp in recorded:
                instances = instance_masks(recorded[stamp], h, w)
                bs.predicted_by["recorded"] += 1
            elif segmenter is not None:
                visible = segment_frame(segmenter, image, order).visible
                track_ids = tracker.update(visible, stamp[0] + stamp[1] * 1e-9)
                instances = [(int(visible.class_ids[i]), visible.class_names[i], float(visible.scores[i]),
                              visible.full_mask(i), int(track_ids[i])) for i in range(len(visible))]
                bs.predicted_by["model"] += 1
            else:
                bs.predicted_by["none"] += 1
            name = f"{bag.name}_{stamp[0]}_{stamp[1]:09d}.{config.image_format}"
            ok, encoded = cv2.imencode(f".{config.image_format}", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                                       [cv2.IMWRITE_JPEG_QUALITY, 95] if config.image_format == "jpg" else [])
            if not ok:
                raise ValueError(f"{bag}: cannot encode frame {name} as {config.image_format}")
            jumps = temporal.update([(t, m) for _, _, _, m, t in instances or [] if m.any()])
            kept = [(class_id, class_name, score, mask_fields(mask), track_id,
                     mask_flags(mask) + (["temporal"] if track_id in jumps else []))
                    for class_id, class_name, score, mask, track_id in instances or [] if mask.any()]
            bs.kept += 1
            bs.annotations += len(kept)
            yield KeptFrame(name, encoded.tobytes(), {"width": w, "height": h, "bag": bag.name,
                                                      "topic": image_conn.topic,
                                                      "stamp": {"sec": stamp[0], "nanosec": stamp[1]}}, kept)
    yield BagDone(bs)


def export_bags(bags: Sequence[Path], out: Path, config: ExportConfig = ExportConfig(), segmenter=None,
                repredict: bool = False, progress: Optional[Callable[[str], None]] = None,
                ray: Optional[RayOptions] = None, model: Optional[ModelSpec] = None) -> dict:
    """Write OUT/images/<split>/*, OUT/annotations/instances_<split>.json, OUT/stats.json and
    OUT/mosaic.png; return the statistics. A bag that cannot be read is named and skipped (``stats.json``:
    ``skipped_bags``); ValueError when none can. ``ray``: each bag on a Ray worker, which loads ``model``
    (the file and config of ``segmenter``); the output is the same."""
    out = Path(out)
    bags = [Path(b) for b in bags]
    splits = assign_splits(bags, config.split, config.seed)
    categories = Categories()
    if segmenter is not None:
        categories.add_model_classes(segmenter.class_names)
    datasets: dict[str, dict[str, list]] = {s: {"images": [], "annotations": []} for s in SPLITS}
    stats: list[BagStats] = []
    mosaic_pool: list[tuple[Path, list]] = []
    models: set[str] = set()
    model_versions: set[str] = set()
    if segmenter is not None:
        model_versions.add(model_version_of(segmenter.model_path))
    skipped_bags = []
    readable = []
    for bag in bags:  # a damaged bag is named and skipped before anything is written
        try:
            open_bag(bag).close()
            readable.append(bag)
        except ValueError as exc:
            skipped_bags.append(str(exc))
    if not readable:
        raise ValueError("; ".join(skipped_bags))
    units = [WorkUnit(seq=i, source=i, path=str(bag), kind="bag") for i, bag in enumerate(readable)]
    job = BagExportJob(config, splits, repredict, model)
    pending: list[KeptFrame] = []
    for unit, item, _ in run_units(job, units, ray, state=segmenter):
        if isinstance(item, UnitError):  # the bag tore part-way: none of it goes in
            skipped_bags.append(item.message)
            pending = []
        elif isinstance(item, BagStart):
            pending = []
            if item.custom.get("robot_instseg.classes"):
                categories.add_model_classes(json.loads(item.custom["robot_instseg.classes"]))
            if item.custom.get("robot_instseg.model"):
                models.add(item.custom["robot_instseg.model"])
                model_versions.add(model_version(item.custom["robot_instseg.model"],
                                                 item.custom.get("robot_instseg.model_sha256", "")))
        elif isinstance(item, KeptFrame):
            pending.append(item)
        else:
            bs = item.stats
            stats.append(bs)
            image_dir = out / "images" / bs.split
            image_dir.mkdir(parents=True, exist_ok=True)
            for kept in pending:
                mosaic_pool.append(_add_frame(kept, datasets[bs.split], categories, image_dir))
            pending = []
            if progress is not None:
                progress(f"{Path(bs.bag).name}: {bs.kept} of {bs.frames} frames kept -> {bs.split}")
    if not stats:
        raise ValueError("; ".join(skipped_bags))
    info = {"description": "robot_instseg bag2coco pre-annotations (model predictions, to be corrected)",
            "bags": [str(b) for b in bags], "models": sorted(models), "model_versions": sorted(model_versions)}
    written = write_split_files(out, datasets, info, categories.coco())
    summary = dataset_statistics(datasets, categories, stats)
    summary["files"] = written
    summary["skipped_bags"] = skipped_bags
    (out / "stats.json").write_text(json.dumps(summary, indent=2))
    write_mosaic(out / "mosaic.png", mosaic_pool, config.mosaic_tiles)
    return summary


def _add_frame(kept: KeptFrame, dataset: dict, categories: Categories, image_dir: Path) -> tuple[Path, list]:
    """Write a kept frame's image and add it and its annotations to its split; its mosaic entry."""
    (image_dir / kept.name).write_bytes(kept.encoded)
    image_id = len(dataset["images"]) + 1
    dataset["images"].append({"id": image_id, "file_name": kept.name, **kept.image})
    frame_anns = []
    for class_id, class_name, score, fields, track_id, qa in kept.instances:
        dataset["annotations"].append({"id": len(dataset["annotations"]) + 1, "image_id": image_id,
                                       "category_id": categories.id_for(class_id, class_name), **fields,
                                       "iscrowd": 0, "score": round(score, 5), "track_id": track_id,
                                       "attributes": {"qa": qa, "track_id": track_id}})
        frame_anns.append((class_id, fields["segmentation"]))
    return image_dir / kept.name, frame_anns


def dataset_statistics(datasets: dict, categories: Categories, stats: Sequence[BagStats]) -> dict:
    """Images, instances and classes per split, and per-bag counts, for the export report."""
    names = {i: n for n, i in categories.by_name.items()}
    per_split = {}
    for split, dataset in datasets.items():
        if not dataset["images"]:
            continue
        per_class: dict[str, int] = {}
        qa = {flag: 0 for flag in ALL_FLAGS}
        for ann in dataset["annotations"]:
            name = names[ann["category_id"]]
            per_class[name] = per_class.get(name, 0) + 1
            for flag in ann["attributes"]["qa"]:
                qa[flag] += 1
        areas = [a["area"] for a in dataset["annotations"]]
        per_split[split] = {"images": len(dataset["images"]), "instances": len(dataset["annotations"]),
                            "bags": sorted({img["bag"] for img in dataset["images"]}),
                            "instances_per_class": per_class, "mask_qa": qa,
                            "median_area_px": float(np.median(areas)) if areas else 0.0}
    return {"splits": per_split, "bags": [vars(s) for s in stats], "categories": categories.coco()}
