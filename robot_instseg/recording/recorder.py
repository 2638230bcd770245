"""The recorder: captures go into a bounded queue and one writer thread puts them in bags.

``submit`` never blocks: a slow or failing disk costs captures (counted), never frames of
segmentation. The thread flushes every ``flush_s`` (see bag_writer: that bounds what a crash
loses), starts a new bag when the current one reaches ``split_bytes`` or ``split_s`` of
recorded time, and stops with a reason when the disk budget is reached or a write fails;
bags already closed are never touched again.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional, Union

from robot_instseg.recording import STORAGE_FORMATS
from robot_instseg.recording.bag_writer import BagWriteError, BagWriter
from robot_instseg.recording.msg_types import STRING, typestore

Payload = Union[bytes, memoryview, Callable[[], bytes]]  # a callable serializes in the writer thread

IDLE, RECORDING, BUDGET_REACHED, FAILED, STOPPED = "idle", "recording", "budget_reached", "failed", "stopped"


@dataclass
class Capture:
    """One captured frame: its messages, all written at ``timestamp_ns`` (bag time)."""

    timestamp_ns: int
    stamp: tuple[int, int]  # the frame's header stamp (sec, nanosec)
    reason: str
    messages: list[tuple[str, str, Payload]]  # (topic, msgtype, serialized CDR or a serializer)


@dataclass(frozen=True)
class RecorderConfig:
    """Where and how bags are written: folder, storage, size and time splits, budget."""

    directory: Path
    storage: str = STORAGE_FORMATS[0]
    prefix: str = "robot_instseg"
    reason_topic: str = "/robot_instseg/capture_reason"
    split_bytes: int = 512 * 2**20  # 0 = never split by size
    split_s: float = 300.0  # 0 = never split by recorded time
    budget_bytes: int = 2 * 2**30  # 0 = no budget
    flush_s: float = 0.5
    queue_size: int = 32
    custom_data: Mapping[str, str] = field(default_factory=dict)


@dataclass
class RecorderStatus:
    """What the recorder did so far: bags, captures written and dropped, and its state."""

    state: str = IDLE
    message: str = ""
    captures_written: int = 0
    captures_dropped: int = 0  # queue full (disk slower than captures) or recorder stopped
    bytes_written: int = 0
    bags: list = field(default_factory=list)
    by_reason: dict = field(default_factory=dict)


def reason_message(capture: Capture, frame_topic: str) -> bytes:
    """std_msgs/String holding JSON: the frame's stamp, its topic and why it was captured."""
    text = json.dumps({"stamp": {"sec": capture.stamp[0], "nanosec": capture.stamp[1]},
                       "topic": frame_topic, "reason": capture.reason})
    store = typestore()
    return bytes(store.serialize_cdr(store.types[STRING](data=text), STRING))


def directory_bytes(directory: Path) -> int:
    """Bytes of all files under ``directory`` (0 when it does not exist yet)."""
    total = 0
    if directory.is_dir():
        for path in directory.rglob("*"):
            try:
                total += path.stat().st_size if path.is_file() else 0
            except OSError:
                pass
    return total


class Recorder:
    """Writes captures to a sequence of bags in ``config.directory`` from its own thread."""

    def __init__(self, config: RecorderConfig, on_event: Optional[Callable[[str, str], None]] = None) -> None:
        self.config = config
        self._on_event = on_event or (lambda level, text: None)
        self._queue: "queue.Queue[Optional[Capture]]" = queue.Queue(maxsize=max(1, config.queue_size))
        self._lock = threading.Lock()
        self._status = RecorderStatus()
        self._bag: Optional[BagWriter] = None
        self._closed_bytes = 0
        self._sequence = 0
        self._session = time.strftime("%Y%m%d_%H%M%S")
        self._thread: Optional[threading.Thread] = None

    # -- caller side (any thread) -----------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            self._status.state = RECORDING
            self._status.message = f"recording to {self.config.directory}"
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def submit(self, capture: Capture) -> bool:
        """Queue a capture; False (and counted) when the queue is full or recording stopped."""
        with self._lock:
            accepting = self._status.state == RECORDING
        if accepting:
            try:
                self._queue.put_nowait(capture)
                return True
            except queue.Full:
                pass
        with self._lock:
            self._status.captures_dropped += 1
        return False

    def stop(self, timeout: float = 10.0) -> RecorderStatus:
        """Write what is queued, close the bag cleanly and end the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
        with self._lock:
            if self._status.state == RECORDING:
                self._status.state = STOPPED
                self._status.message = f"stopped; {self._status.captures_written} captures in " \
                                       f"{len(self._status.bags)} bag(s) in {self.config.directory}"
        return self.status()

    def status(self) -> RecorderStatus:
        with self._lock:
            s = self._status
            return RecorderStatus(s.state, s.message, s.captures_written, s.captures_dropped, s.bytes_written,
                                  list(s.bags), dict(s.by_reason))

    @property
    def active(self) -> bool:
        return self.status().state == RECORDING

    # -- writer thread ----------------------------------------------------------------------
    def _run(self) -> None:
        self._closed_bytes = directory_bytes(Path(self.config.directory).expanduser())  # the budget covers them
        last_flush = time.monotonic()
        dirty = False
        while True:
            try:
                capture: Optional[Capture] = self._queue.get(timeout=self.config.flush_s)
                if capture is None:  # stop()
                    break
            except queue.Empty:
                capture = None
            if capture is not None and self.active:
                dirty = self._write(capture) or dirty
            if dirty and time.monotonic() - last_flush >= self.config.flush_s:
                dirty = not self._guard(lambda: self._bag.flush() if self._bag else None)
                last_flush = time.monotonic()
        self._drain()
        if self._bag is not None:
            self._guard(self._close_bag)

    def _drain(self) -> None:
        while True:
            try:
                capture = self._queue.get_nowait()
            except queue.Empty:
                return
            if capture and self.active:
                self._write(capture)

    def _write(self, capture: Capture) -> bool:
        try:
            messages = [(topic, msgtype, payload() if callable(payload) else bytes(payload))
                        for topic, msgtype, payload in capture.messages]
        except Exception as exc:  # a message that cannot be serialized is dropped, not fatal
            self._event("warn", f"capture at {capture.stamp[0]}.{capture.stamp[1]:09d} not recorded: "
                                f"serializing failed: {exc}")
            with self._lock:
                self._status.captures_dropped += 1
            return False
        frame_topic = messages[0][0] if messages else ""
        messages.append((self.config.reason_topic, STRING, reason_message(capture, frame_topic)))
        size = sum(len(data) for _, _, data in messages)
        cfg = self.config
        used = self._closed_bytes + (self._bag.size_on_disk() + self._unflushed() if self._bag else 0)
        if cfg.budget_bytes and used + size > cfg.budget_bytes:
            self._finish(BUDGET_REACHED, f"disk budget of {cfg.budget_bytes / 2**20:.1f} MiB reached "
                                         f"({used / 2**20:.1f} MiB written in {self.config.directory}); "
                                         f"recording stopped, segmentation continues")
            return False

        def write() -> None:
            if self._bag is not None and self._split_due(size, capture.timestamp_ns):
                self._close_bag()
            bag = self._bag if self._bag is not None else self._open_bag()
            for topic, msgtype, data in messages:
                bag.write(topic, msgtype, capture.timestamp_ns, data)

        if not self._guard(write):
            return False
        with self._lock:
            self._status.captures_written += 1
            self._status.bytes_written += size
            key = capture.reason.split(":", 1)[0]
            self._status.by_reason[key] = self._status.by_reason.get(key, 0) + 1
        return True

    def _unflushed(self) -> int:
        bag = self._bag
        return 0 if bag is None else max(0, bag.payload_bytes - bag.size_on_disk())

    def _split_due(self, size: int, timestamp_ns: int) -> bool:
        bag, cfg = self._bag, self.config
        if bag is None or bag.messages == 0:
            return False
        if cfg.split_bytes and bag.payload_bytes + size > cfg.split_bytes:
            return True
        return bool(cfg.split_s) and bag.first_ns is not None and (timestamp_ns - bag.first_ns) / 1e9 >= cfg.split_s

    def _open_bag(self) -> BagWriter:
        directory = Path(self.config.directory).expanduser()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BagWriteError(exc.errno, f"cannot create recording directory {directory}: "
                                           f"{exc.strerror or exc}") from exc
        path = directory / f"{self.config.prefix}_{self._session}_{self._sequence:03d}"
        while path.exists() or path.with_name(path.name + ".damaged").exists():  # a recorder started this second
            self._sequence += 1
            path = directory / f"{self.config.prefix}_{self._session}_{self._sequence:03d}"
        self._sequence += 1
        self._bag = BagWriter(path, self.config.storage, self.config.custom_data)
        with self._lock:
            self._status.bags.append(str(path))
        self._event("info", f"recording to bag {path} ({self.config.storage})")
        return self._bag

    def _close_bag(self) -> None:
        bag, self._bag = self._bag, None
        if bag is None:
            return
        try:
            bag.close()
        finally:
            self._closed_bytes += bag.size_on_disk()
        self._event("info", f"bag closed: {bag.path} ({bag.messages} messages)")

    def _guard(self, action: Callable[[], None]) -> bool:
        """Run a disk action; on failure stop recording with a diagnostic naming the path."""
        try:
            action()
            return True
        except (BagWriteError, OSError) as exc:
            bag, self._bag = self._bag, None
            if bag is not None:
                bag.abort()  # what was flushed stays readable (bag repair rebuilds the index)
            self._finish(FAILED, f"recording stopped: {exc}; segmentation continues, "
                                 f"bags written before are intact")
            return False

    def _finish(self, state: str, message: str) -> None:
        if state == BUDGET_REACHED and self._bag is not None:
            self._guard(self._close_bag)
        with self._lock:
            if self._status.state != RECORDING:
                return
            self._status.state = state
            self._status.message = message
        self._event("error" if state == FAILED else "warn", message)

    def _event(self, level: str, text: str) -> None:
        try:
            self._on_event(level, text)
        except Exception:
            pass
