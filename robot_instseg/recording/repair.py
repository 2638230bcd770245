"""``robot-instseg bag repair``: make a bag whose writer died (kill -9, power loss) readable.

Such a bag has no metadata.yaml, and an MCAP file also lacks its summary and footer (which
rosbags and ros2 bag need). Every complete record up to the last flush is still in the file:
we read them in order (the ``mcap`` library for MCAP, sqlite3 for .db3), stop at the first
truncated one, and write the messages into a fresh bag with rosbags. The original stays
beside it as ``<bag>.damaged`` so nothing is ever deleted.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from rosbags.interfaces import Connection
from rosbags.rosbag2 import Writer

from robot_instseg.recording.bag_writer import BAG_VERSION, SIDECAR, STORAGES, sidecar_custom_data
from robot_instseg.recording.msg_types import typestore

UNKNOWN_HASH = "RIHS01_" + "0" * 64


@dataclass
class TopicInfo:
    """A topic found in a damaged bag, with its type and message definition."""

    topic: str
    msgtype: str
    msgdef: str
    qos: str = ""


@dataclass
class RepairReport:
    """What a repair recovered: messages per topic, and why reading stopped early, if it did."""

    path: Path
    storage: str
    messages: int = 0
    topics: dict = field(default_factory=dict)  # topic -> message count
    truncated: str = ""  # why reading stopped early, "" when the file ended cleanly
    damaged_copy: Optional[Path] = None


def needs_repair(path: Path) -> bool:
    """True when the bag directory has a storage file but no metadata.yaml (its writer died)."""
    path = Path(path)
    return path.is_dir() and not (path / "metadata.yaml").is_file() and bool(_storage_files(path))


def _storage_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.suffix in (".mcap", ".db3"))


def _read_mcap(file: Path, report: RepairReport) -> Iterator[tuple[TopicInfo, int, bytes]]:
    from mcap.records import Channel, Message, Schema
    from mcap.stream_reader import StreamReader

    schemas: dict[int, Schema] = {}
    channels: dict[int, TopicInfo] = {}
    with file.open("rb") as stream:
        try:
            for record in StreamReader(stream, skip_magic=False).records:
                if isinstance(record, Schema):
                    schemas[record.id] = record
                elif isinstance(record, Channel):
                    schema = schemas.get(record.schema_id)
                    channels[record.id] = TopicInfo(record.topic, schema.name if schema else "",
                                                    schema.data.decode() if schema else "",
                                                    record.metadata.get("offered_qos_profiles", ""))
                elif isinstance(record, Message) and record.channel_id in channels:
                    yield channels[record.channel_id], record.log_time, bytes(record.data)
        except Exception as exc:  # a torn last record raises whatever the parser meets: stop there
            report.truncated = f"{type(exc).__name__}: {exc}"


def _read_sqlite(file: Path, report: RepairReport) -> Iterator[tuple[TopicInfo, int, bytes]]:
    db = sqlite3.connect(str(file))  # read-write: sqlite rolls back a torn transaction on open
    try:
        definitions = {}
        if db.execute("SELECT name FROM sqlite_master WHERE name='message_definitions'").fetchone():
            definitions = dict(db.execute("SELECT topic_type, encoded_message_definition FROM message_definitions"))
        topics = {row[0]: TopicInfo(row[1], row[2], definitions.get(row[2], ""), row[3] or "")
                  for row in db.execute("SELECT id, name, type, offered_qos_profiles FROM topics")}
        for topic_id, timestamp, data in db.execute("SELECT topic_id, timestamp, data FROM messages ORDER BY id"):
            if topic_id in topics:
                yield topics[topic_id], timestamp, bytes(data)
    finally:
        db.close()


def repair_bag(path: Path) -> RepairReport:
    """Rewrite the readable messages of a damaged bag in place; the original is kept as .damaged."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: not a bag directory")
    files = _storage_files(path)
    if not files:
        raise ValueError(f"{path}: no .mcap or .db3 file to repair")
    storage = "mcap" if files[0].suffix == ".mcap" else "sqlite3"
    report = RepairReport(path=path, storage=storage)
    custom_data = sidecar_custom_data(path)
    work = path.with_name(f".{path.name}.repairing")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    fixed = work / path.name  # the same name, so the storage file inside is named like the bag
    writer = Writer(fixed, version=BAG_VERSION, storage_plugin=STORAGES[storage])
    for key, value in custom_data.items():
        writer.set_custom_data(key, str(value))
    writer.set_custom_data("robot_instseg.repaired_from", path.name + ".damaged")
    writer.open()
    connections: dict[tuple[str, str], Connection] = {}
    store = typestore()
    try:
        for file in files:
            reader = _read_mcap if storage == "mcap" else _read_sqlite
            for info, timestamp, data in reader(file, report):
                key = (info.topic, info.msgtype)
                if key not in connections:
                    if info.msgtype in store.types:
                        connections[key] = writer.add_connection(info.topic, info.msgtype, typestore=store)
                    else:
                        connections[key] = writer.add_connection(info.topic, info.msgtype, msgdef=info.msgdef,
                                                                 rihs01=UNKNOWN_HASH)
                writer.write(connections[key], timestamp, data)
                report.messages += 1
                report.topics[info.topic] = report.topics.get(info.topic, 0) + 1
    except BaseException:
        writer.abort()
        shutil.rmtree(work, ignore_errors=True)
        raise
    writer.close()
    if (path / SIDECAR).is_file():
        shutil.copy2(path / SIDECAR, fixed / SIDECAR)
    report.damaged_copy = path.with_name(path.name + ".damaged")
    path.rename(report.damaged_copy)
    fixed.rename(path)
    work.rmdir()
    return report
