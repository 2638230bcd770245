"""Units of work on Ray Data: one actor per worker loads the model once, each unit reads and processes its
own frames there, and the driver gets the items back in unit order (``preserve_order``), so whatever it
does in order (tracking, writing) sees exactly the single-process sequence.

Ray is imported here only (the extra ``make setup-ray``); nothing else in the package needs it."""

from __future__ import annotations

import logging
import os
import pickle
import socket
import time
from typing import Any, Iterator, Optional, Sequence

from robot_instseg.offline.unit_job import RayOptions, Row, UnitJob, process_guarded
from robot_instseg.offline.work_units import WorkUnit

BLOCK_ITEMS = 8  # frames per block a worker hands back (about 12 MB for a bag's frames with their images)


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster named cannot be joined."""


class _UnitWorker:
    """A Ray Data actor: the job's state (the Segmenter) built once, then whole units per call. The job is a
    class attribute of a subclass ``ray_units`` makes per run, shipped with the class, so a restarted actor
    rebuilds itself from the class alone."""

    job: UnitJob

    def __init__(self) -> None:
        self.state = self.job.setup()
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: dict) -> Iterator[dict]:
        """Items in blocks of ``BLOCK_ITEMS`` as they are made, so a long unit streams back to the driver
        instead of sitting whole in the object store."""
        out = _empty_block()
        for blob in batch["unit"]:
            unit = pickle.loads(blob)  # written by our own driver, never a file
            for pos, item in enumerate(process_guarded(self.job, self.state, unit)):
                out["seq"].append(unit.seq)
                out["pos"].append(pos)
                out["payload"].append(pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL))
                out["worker"].append(self.name)
                out["made_at"].append(time.time())
                if len(out["seq"]) == BLOCK_ITEMS:
                    yield out
                    out = _empty_block()
        if out["seq"]:
            yield out


def _empty_block() -> dict[str, list]:
    return {"seq": [], "pos": [], "payload": [], "worker": [], "made_at": []}


def _start(options: RayOptions) -> bool:
    """Join the cluster named (``auto``, ``ray://host:port``, ``host:port``) or start a local Ray for this run;
    True when this call started it (and must stop it)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves the machine
    if not options.address:  # Ray's switch for one-machine clusters: a Ray started for this run listens on loopback
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--ray needs Ray Data: run 'make setup-ray' (requirements-ray.txt)") from None
    if ray.is_initialized():
        return False
    _check_reachable(options.address)
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if options.address:
            ray.init(address=options.address, **kwargs)
        else:
            need = max(1.0, options.workers * options.cpus_per_worker)
            ray.init(address="local", num_cpus=max(int(need + 0.999), os.cpu_count() or 1), include_dashboard=False,
                     **kwargs)  # "local": always a new Ray, never one that happens to run on this machine
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError... by version
        where = options.address or "a local Ray"
        raise RayUnavailable(f"cannot start or join {where}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    return True


def _check_reachable(address: Optional[str], timeout_s: float = 5.0) -> None:
    """RayUnavailable now when HOST:PORT (or ray://HOST:PORT) takes no connection: ``ray.init`` would retry
    for minutes before it gave up."""
    if not address or address == "auto":
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailable(f"--ray {address}: give auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise RayUnavailable(f"no Ray cluster at {address}: {exc.strerror or exc}") from None


def ray_units(job: UnitJob, units: Sequence[WorkUnit], options: RayOptions) -> Iterator[Row]:
    """(unit, item, worker, made at) of every unit, processed on ``options.workers`` actors, in unit order."""
    started = _start(options)
    import ray
    import ray.data

    try:
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # not "progress bars disabled" on every run
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # items come back in unit order
        context.enable_progress_bars = False  # the verb's own bar counts frames, per worker
        if not units:
            return
        rows = [{"seq": unit.seq, "unit": pickle.dumps(unit)} for unit in units]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            type("InstsegUnitWorker", (_UnitWorker,), {"job": job}), batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(options.workers, len(rows))), num_cpus=options.cpus_per_worker,
            num_gpus=options.gpus_per_worker or None)
        by_seq = {unit.seq: unit for unit in units}
        last = (-1, -1)
        for row in dataset.iter_rows():
            key = (int(row["seq"]), int(row["pos"]))
            if key <= last:
                raise RuntimeError(f"Ray returned unit item {key} after {last}: order lost")
            last = key
            yield by_seq[key[0]], pickle.loads(row["payload"]), str(row["worker"]), float(row["made_at"])
    finally:
        if started:
            ray.shutdown()
