"""One bag's share of a bag2coco dataset, where a worker runs it: frames of one image topic, every
``stride``-th, minus blurred ones (variance of the Laplacian) and near-duplicates of the last frame kept
(mean absolute difference of small grey thumbnails), each with its predictions (the InstanceArray recorded
with it, or a model's) as COCO mask fields and QA flags. A bag is one unit of work: the selection is a
chain, each kept frame compared with the last one kept."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from robot_instseg.dataset.coco_results import whole_object_entries, whole_object_fields
from robot_instseg.dataset.mask_qa import TemporalCheck, mask_flags
from robot_instseg.engine.errors import InputError
from robot_instseg.engine.frame_pipeline import segment_frame
from robot_instseg.io.frame_sources import IMAGE_TYPES, message_fields, open_bag
from robot_instseg.io.image_encodings import decode_fields
from robot_instseg.offline.jobs import ModelSpec
from robot_instseg.offline.work_units import WorkUnit
from robot_instseg.recording.bag_writer import sidecar_custom_data
from robot_instseg.tracking.tracker import Tracker

INSTANCE_ARRAY = "robot_instseg_msgs/msg/InstanceArray"


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
    return [(int(inst.class_id), str(inst.class_name), float(inst.score),
             full_frame(inst.mask, inst.bbox, height, width), int(inst.track_id)) for inst in msg.instances]


def full_frame(mask_msg, box, height: int, width: int) -> np.ndarray:
    """A full-frame bool mask from a mono8 mask Image cropped to ``box`` (a RegionOfInterest's offsets)."""
    full = np.zeros((height, width), bool)
    if mask_msg.width and mask_msg.height:
        rows = np.frombuffer(bytes(mask_msg.data), np.uint8).reshape(mask_msg.height, mask_msg.step)
        crop = rows[:, :mask_msg.width] > 0
        x, y = int(box.x_offset), int(box.y_offset)
        full[y:y + mask_msg.height, x:x + mask_msg.width] = crop[:max(0, height - y), :max(0, width - x)]
    return full


def recorded_whole_objects(msg, visible: Sequence[np.ndarray], height: int, width: int) -> list[dict]:
    """Per instance of an InstanceArray (``visible``: its full-frame masks, from ``instance_masks``): its
    whole-object keys (``coco_results.whole_object_fields``; ``occluded_by`` Instance ids until bag2coco turns
    them into the frame's annotation ids), {} where it has none."""
    return [whole_object_fields(full_frame(inst.amodal_mask, inst.amodal_bbox, height, width), int(mask.sum()),
                                int(inst.id), list(inst.occluded_by))
            if inst.has_amodal and inst.amodal_mask.width and inst.amodal_mask.height else {}
            for inst, mask in zip(msg.instances, visible)]


def predicted_whole_objects(visible) -> list[dict]:
    """Per instance of a frame's published Detections: its whole-object keys, {} without an amodal head."""
    return whole_object_entries(visible) if visible.has_amodal else [{} for _ in range(len(visible))]


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
            instances, wholes = None, []
            if stamp in recorded:
                instances = instance_masks(recorded[stamp], h, w)
                wholes = recorded_whole_objects(recorded[stamp], [m for _, _, _, m, _ in instances], h, w)
                bs.predicted_by["recorded"] += 1
            elif segmenter is not None:
                visible = segment_frame(segmenter, image, order).visible
                track_ids = tracker.update(visible, stamp[0] + stamp[1] * 1e-9)
                instances = [(int(visible.class_ids[i]), visible.class_names[i], float(visible.scores[i]),
                              visible.full_mask(i), int(track_ids[i])) for i in range(len(visible))]
                wholes = predicted_whole_objects(visible)
                bs.predicted_by["model"] += 1
            else:
                bs.predicted_by["none"] += 1
            name = f"{bag.name}_{stamp[0]}_{stamp[1]:09d}.{config.image_format}"
            ok, encoded = cv2.imencode(f".{config.image_format}", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                                       [cv2.IMWRITE_JPEG_QUALITY, 95] if config.image_format == "jpg" else [])
            if not ok:
                raise ValueError(f"{bag}: cannot encode frame {name} as {config.image_format}")
            jumps = temporal.update([(t, m) for _, _, _, m, t in instances or [] if m.any()])
            kept = [(class_id, class_name, score, {**mask_fields(mask), **whole}, track_id,
                     mask_flags(mask) + (["temporal"] if track_id in jumps else []))
                    for (class_id, class_name, score, mask, track_id), whole in zip(instances or [], wholes)
                    if mask.any()]
            bs.kept += 1
            bs.annotations += len(kept)
            yield KeptFrame(name, encoded.tobytes(), {"width": w, "height": h, "bag": bag.name,
                                                      "topic": image_conn.topic,
                                                      "stamp": {"sec": stamp[0], "nanosec": stamp[1]}}, kept)
    yield BagDone(bs)
