"""Run units of work in order: here, one after another, or on Ray Data actors (``ray_runner``), with the
same jobs, so the two give the same items in the same order."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Generator, Iterable, Iterator, Optional, Sequence

from robot_instseg.offline.unit_job import RayOptions, Row, UnitError, UnitJob, process_guarded
from robot_instseg.offline.work_units import WorkUnit

__all__ = ["RayOptions", "Row", "UnitError", "UnitJob", "WorkerProgress", "items_only", "process_guarded", "run_units"]


def run_units(job: UnitJob, units: Sequence[WorkUnit], ray: Optional[RayOptions] = None,
              state: Any = None) -> Generator[Row, None, None]:
    """(unit, item, worker, made at) for every item of every unit, in unit order; ``ray`` None: here, with
    ``state`` (else ``job.setup()``), worker "local"."""
    if ray is not None:
        from robot_instseg.offline.ray_runner import ray_units

        yield from ray_units(job, units, ray)
        return
    state = job.setup() if state is None else state
    for unit in units:
        for item in process_guarded(job, state, unit):
            yield unit, item, "local", time.time()


class WorkerProgress:
    """Frames done / total and frames per second (tqdm, as the other verbs), with each worker's rate measured
    on its own clock from its first frame to its last: the throughput once started, without the start-up
    (Ray, actors, model loads) that a whole-run average would hide it behind."""

    def __init__(self, total: Optional[int], quiet: bool, desc: str = "segmenting") -> None:
        import sys

        from tqdm import tqdm

        self.bar = tqdm(total=total or None, desc=desc, unit="frame", disable=quiet, file=sys.stderr)
        self.start = time.time()
        self.made: dict[str, list[float]] = {}  # worker -> [first, last, count]
        self.shown = 0.0

    def update(self, worker: str = "local", made_at: Optional[float] = None) -> None:
        self.bar.update(1)
        made_at = time.time() if made_at is None else made_at
        seen = self.made.setdefault(worker, [made_at, made_at, 0])
        seen[1], seen[2] = max(seen[1], made_at), seen[2] + 1
        if worker != "local" and time.monotonic() - self.shown > 1.0:
            self.shown = time.monotonic()
            self.bar.set_postfix_str(self.rates(), refresh=False)

    def counted(self, items: Iterable[Any]) -> Iterator[Any]:
        """``items`` unchanged, each counted as one frame done here."""
        for item in items:
            self.update()
            yield item

    def worker_rates(self) -> dict[str, float]:
        """Frames per second of each worker, from its first frame to its last (0 with fewer than two)."""
        return {w: (n - 1) / (last - first) if n > 1 and last > first else 0.0
                for w, (first, last, n) in sorted(self.made.items())}

    def rates(self) -> str:
        return " ".join(f"{w} {r:.1f}/s" for w, r in self.worker_rates().items())

    def summary(self) -> str:
        """The start-up (until the first frame came back) and the throughput after it, then each worker's."""
        if not self.made:
            return "no frame done"
        first = min(first for first, _, _ in self.made.values())
        return f"first frame after {max(0.0, first - self.start):.1f} s, then " \
               f"{sum(self.worker_rates().values()):.1f} frames/s; by worker: {self.rates()}"

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> "WorkerProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def unit_stream(job: UnitJob, units: Sequence[WorkUnit], ray: Optional[RayOptions], total: Optional[int],
                quiet: bool) -> Iterator[tuple[Generator[Row, None, None], "WorkerProgress"]]:
    """``run_units`` with its progress bar, for a ``with``: on the way out the bar is closed and the stream too,
    which stops a Ray the run started, also on an error or Ctrl-C."""
    stream = run_units(job, units, ray)
    try:
        with WorkerProgress(total, quiet) as progress:
            yield stream, progress
    finally:
        stream.close()


def items_only(stream: Iterator[Row], progress: Optional[WorkerProgress] = None,
               on_error: Optional[Callable[[UnitError], None]] = None) -> Iterator[Any]:
    """The items of a ``run_units`` stream, counting each on ``progress``; a UnitError is raised as the
    ValueError the single-process reader would have raised, unless ``on_error`` takes it."""
    for _, item, worker, made_at in stream:
        if isinstance(item, UnitError):
            if on_error is None:
                raise ValueError(item.message)
            on_error(item)
            continue
        if progress is not None:
            progress.update(worker, made_at)
        yield item
