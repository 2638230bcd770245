"""The one numba setting every compiled kernel shares.

Why compiled kernels: the host work per frame (issue 28) is many small per-instance steps, and with
numpy each step is a call that costs more than its arithmetic on a 60x60 crop. A kernel does an
instance's whole step in one call. ``cache=True`` keeps the machine code in ``__pycache__`` (or
``NUMBA_CACHE_DIR``) so only a machine's first start compiles; ``nogil`` lets a kernel run beside
the ROS executor's threads; no ``fastmath``, so float32 arithmetic rounds as numpy's does.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import numba

F = TypeVar("F", bound=Callable[..., Any])


def kernel(function: F) -> F:
    """Compile ``function`` (nopython, cached, GIL released)."""
    return numba.njit(cache=True, nogil=True)(function)  # type: ignore[no-any-return]
