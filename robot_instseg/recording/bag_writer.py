"""One rosbag2 bag (MCAP or sqlite3) written with rosbags, made durable at every ``flush``.

rosbags buffers an MCAP chunk in memory (up to 1 MiB) and writes the summary and
metadata.yaml only at close; its sqlite3 writer commits only at close. A recorder that
crashes would lose everything since the last of those. ``flush`` closes the pending chunk
(or commits) and fsyncs, so after ``kill -9`` or power loss the file holds every message
up to the last flush, and ``robot_instseg.recording.repair`` makes it a complete bag again.
The flush reaches into rosbags' storage objects; ``requirements.txt`` pins the version it
was written against and the crash test in test_recording guards it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer

from robot_instseg.recording import STORAGE_FORMATS
from robot_instseg.recording.msg_types import typestore

STORAGES = dict(zip(STORAGE_FORMATS, (StoragePlugin.MCAP, StoragePlugin.SQLITE3)))
# rosbag2 metadata version: rosbags writes 8 or 9; 8 is the older, read by Iron and newer and
# parsed field by field by Humble's rosbag2.
BAG_VERSION: Literal[8, 9] = 8
# Written beside the storage file when the bag opens: the custom metadata (model, classes...)
# otherwise reaches disk only in metadata.yaml at close, so a crash would lose it.
SIDECAR = "robot_instseg.json"


def sidecar_custom_data(folder: Path) -> dict:
    """The custom data our sidecar in a bag folder holds ({} without one); ValueError if it is not JSON."""
    if not (folder / SIDECAR).is_file():
        return {}
    return dict(json.loads((folder / SIDECAR).read_text()).get("custom_data") or {})


class BagWriteError(OSError):
    """Writing the bag failed (disk full, directory gone or unwritable, ...)."""


class BagWriter:
    """A bag being written: lazily created topics, byte counts, flush for crash tolerance."""

    def __init__(self, path: Path, storage: str = "mcap", custom_data: Optional[Mapping[str, str]] = None) -> None:
        if storage not in STORAGES:
            raise ValueError(f"bag storage must be one of {sorted(STORAGES)}, got {storage!r}")
        self.path = Path(path)
        self.storage = storage
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        for key, value in dict(custom_data or {}).items():
            self._writer.set_custom_data(key, str(value))
        try:
            self._writer.open()
        except OSError as exc:
            raise BagWriteError(exc.errno, f"cannot create bag {self.path}: {exc.strerror or exc}") from exc
        try:
            (self.path / SIDECAR).write_text(json.dumps({"custom_data": dict(self._writer.custom_data)}, indent=1))
        except OSError as exc:
            self._writer.abort()
            raise BagWriteError(exc.errno, f"cannot write in bag {self.path}: {exc.strerror or exc}") from exc
        self._connections: dict[tuple[str, str], Connection] = {}
        self.messages = 0
        self.payload_bytes = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None

    @property
    def storage_file(self) -> Path:
        return Path(self._writer.storage.path) if self._writer.storage is not None else self.path

    def write(self, topic: str, msgtype: str, timestamp_ns: int, data: bytes) -> None:
        key = (topic, msgtype)
        try:
            connection = self._connections.get(key)
            if connection is None:
                connection = self._writer.add_connection(topic, msgtype, typestore=typestore())
                self._connections[key] = connection
            self._writer.write(connection, int(timestamp_ns), data)
        except OSError as exc:
            raise BagWriteError(exc.errno, f"writing {self.storage_file} failed: {exc.strerror or exc}") from exc
        self.messages += 1
        self.payload_bytes += len(data)
        self.first_ns = timestamp_ns if self.first_ns is None else min(self.first_ns, timestamp_ns)
        self.last_ns = timestamp_ns if self.last_ns is None else max(self.last_ns, timestamp_ns)

    def flush(self) -> None:
        """Make everything written so far survive a crash of this process or of the machine."""
        storage: Any = self._writer.storage  # rosbags' concrete writer; its chunk / conn are not in the base type
        if storage is None:
            return
        try:
            if self.storage == "mcap":
                if storage.chunk.bio.tell():
                    storage.close_chunk()
                storage.bio.flush()
                os.fsync(storage.bio.fileno())
            else:
                storage.conn.commit()
        except OSError as exc:
            raise BagWriteError(exc.errno, f"flushing {self.storage_file} failed: {exc.strerror or exc}") from exc

    def size_on_disk(self) -> int:
        try:
            return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())
        except OSError:
            return self.payload_bytes

    def close(self) -> None:
        """Write the index and metadata.yaml. On failure the bag is left for ``bag repair``."""
        if self._writer.storage is None:
            return
        try:
            self._writer.close()
        except OSError as exc:
            try:
                self._writer.abort()
            except OSError:
                pass
            raise BagWriteError(exc.errno, f"closing {self.storage_file} failed: {exc.strerror or exc}; "
                                f"run `robot-instseg bag repair {self.path}`") from exc

    def abort(self) -> None:
        try:
            self._writer.abort()
        except OSError:
            pass
