"""The one numba setting every compiled kernel shares.

Why compiled kernels: the host work per frame (issue 28) is many small per-instance steps, and with
numpy each step is a call that costs more than its arithmetic on a 60x60 crop. A kernel does an
instance's whole step in one call. ``cache=True`` keeps the machine code in ``__pycache__`` (or
``NUMBA_CACHE_DIR``) so only a machine's first start compiles; ``nogil`` lets a kernel run beside
the ROS executor's threads; no ``fastmath``, so float32 arithmetic rounds as numpy's does.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def kernel(function: F) -> F:
    """Compile ``function`` (nopython, cached, GIL released)."""
    return cast(F, numba.njit(cache=True, nogil=True)(function))


_WARMERS: list[Callable[[], Any]] = []


def warmer(function: Callable[[], Any]) -> Callable[[], Any]:
    """Register a function that calls its module's kernels on tiny inputs of the types they get in use."""
    _WARMERS.append(function)
    return function


def warm_up() -> None:
    """Compile (or load from the cache) the kernels of every module imported so far, before the first frame:
    a first compile takes seconds, which a node must spend while configuring, not on a frame."""
    for function in _WARMERS:
        function()


KERNEL_MODULES = ("robot_instseg.engine.preprocess", "robot_instseg.engine.mask_sampling", "robot_instseg.engine.postprocess",
                  "robot_instseg.engine.ownership", "robot_instseg.geometry.surface_kernels", "robot_instseg.geometry.completion",
                  "robot_instseg.geometry.support_plane", "robot_instseg.geometry.depth_order",
                  "robot_instseg.tracking.masks", "robot_instseg.tracking.pair_costs")


def compile_all() -> None:
    """Compile every kernel into the cache: ``make build`` runs it, so no node or test compiles on its first frame."""
    for module in KERNEL_MODULES:
        importlib.import_module(module)
    warm_up()


if __name__ == "__main__":  # the imported module, whose registry the kernels' modules fill (not this __main__)
    importlib.import_module("robot_instseg.jit").compile_all()
