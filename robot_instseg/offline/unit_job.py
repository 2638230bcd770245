"""What runs a unit of work, wherever it runs: the job protocol, the error item of a unit that tore, the
``--ray`` options and the row every runner yields (shared by ``unit_runner`` and ``ray_runner``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional, Protocol

from robot_instseg.offline.work_units import WorkUnit

Row = tuple[WorkUnit, Any, str, float]  # unit, item, worker ("host:pid" or "local"), when it was made (its clock)


class UnitJob(Protocol):
    """What a worker does: ``setup`` once (load the model), then ``process`` each unit it is given."""

    def setup(self) -> Any: ...

    def process(self, state: Any, unit: WorkUnit) -> Iterator[Any]: ...


@dataclass(frozen=True)
class UnitError:
    """A unit that failed part-way (a bag torn in the middle): its items so far stand, then this."""

    unit: int
    message: str


@dataclass(frozen=True)
class RayOptions:
    """``--ray [ADDRESS]`` and its options: None address = a local Ray started for this run."""

    address: Optional[str] = None
    workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0


def process_guarded(job: UnitJob, state: Any, unit: WorkUnit) -> Iterator[Any]:
    """``job.process`` of one unit whose failure ends in a UnitError item instead of an exception, so one
    torn input never takes a whole archive's run with it."""
    try:
        yield from job.process(state, unit)
    except Exception as exc:  # any reader or decoder failure of this unit; the caller names it
        yield UnitError(unit.seq, f"{unit.path}: {exc}")
