"""A one-slot mailbox between an image callback and the inference worker.

The callback never blocks: ``put`` replaces whatever is waiting (that frame is dropped and
counted). The worker's ``take`` always gets the newest frame received, so inference never
runs on a frame older than the newest one available.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, Optional, TypeVar

T = TypeVar("T")


class FrameMailbox(Generic[T]):
    """One slot: ``put`` replaces what is waiting (counting the drop), ``take`` waits for it."""

    def __init__(self, on_put: Optional[Callable[[], None]] = None) -> None:
        """``on_put`` is called after every put (outside the lock): one worker serving several mailboxes
        waits on one event that every camera's callback sets."""
        self._on_put = on_put
        self._cond = threading.Condition()
        self._item: Optional[T] = None
        self._closed = False
        self.received = 0
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``; return True when it replaced an unprocessed one (a dropped frame)."""
        with self._cond:
            replaced = self._item is not None
            self._item = item
            self.received += 1
            self.dropped += int(replaced)
            self._cond.notify()
        if self._on_put is not None:
            self._on_put()
        return replaced

    @property
    def waiting(self) -> bool:
        """A frame is waiting (read without the lock: a hint; ``poll`` decides)."""
        return self._item is not None

    def poll(self) -> Optional[T]:
        """The waiting frame, or None at once."""
        with self._cond:
            item, self._item = self._item, None
            return item

    def take(self, timeout: Optional[float] = None) -> Optional[T]:
        """The newest frame, waiting up to ``timeout`` s; None on timeout or when closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def clear(self) -> None:
        with self._cond:
            self._item = None

    def close(self) -> None:
        """Wake a waiting ``take`` for good (worker shutdown)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False
            self._item = None
