"""One helper thread for a frame's 3D, on machines with a core to spare.

Why: between two inference runs the host work of a frame runs on one core while the others wait for
the next run (onnxruntime stops spinning when a run returns). The 3D's kernels release the GIL, so the
occlusion order and half of the instances' surfaces can run on a second core beside this thread (issue 28:
host work per frame). One thread, made on first use and kept: a frame's steps are too short to pay for more.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

_lock = threading.Lock()
_pool: Optional[ThreadPoolExecutor] = None


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def helper_thread() -> Optional[ThreadPoolExecutor]:
    """The helper (a one-thread executor), or None where this process has a single core."""
    global _pool
    if usable_cores() < 2:
        return None
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frame_3d")
        return _pool
