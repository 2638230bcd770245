"""Segmenter speed against the raw runtime, measured in one interleaved run.

Absolute times drift on shared machines; the ratio of our whole pipeline to the bare
``session.run`` on the same tensor, measured alternately in the same loop, does not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from robot_instseg.engine.frame_pipeline import FrameOutput, resolved
from robot_instseg.engine.segmenter import Segmenter


@dataclass
class BenchReport:
    """Per-stage timings of our pipeline and of the raw runtime session on the same frames."""

    runs: int
    stages: dict[str, list[float]]  # ms per run: preprocess, inference, postprocess, total, raw_session, ownership
    instances: list[int]
    transfers: list[tuple[int, int]] = field(default_factory=list)  # host->device, device->host bytes per run

    @staticmethod
    def _median(values: Sequence[float]) -> float:
        return float(np.median(values))

    @staticmethod
    def _p95(values: Sequence[float]) -> float:
        return float(np.percentile(values, 95))

    def summary(self) -> dict:
        out: dict = {}
        for name, values in self.stages.items():
            out[f"{name}_ms"] = round(self._median(values), 3)
            out[f"{name}_p95_ms"] = round(self._p95(values), 3)
        out["ratio"] = round(out["total_ms"] / out["raw_session_ms"], 4)
        # Each run times the raw call and the full call back to back, so the median of the
        # per-run ratios cancels machine drift that the ratio of two medians does not.
        paired = np.asarray(self.stages["total"]) / np.asarray(self.stages["raw_session"])
        out["ratio_paired_median"] = round(float(np.median(paired)), 4)
        # What the node adds per frame after the Segmenter: overlap ownership and visible masks.
        with_ownership = (np.asarray(self.stages["total"]) + np.asarray(self.stages["ownership"])) / \
            np.asarray(self.stages["raw_session"])
        out["ratio_with_ownership_paired_median"] = round(float(np.median(with_ownership)), 4)
        out["postprocess_over_inference"] = round(out["postprocess_ms"] / out["inference_ms"], 4)
        if "fusion" in self.stages:  # depth fusion of the visible instances, per frame
            out["fusion_over_inference"] = round(out["fusion_ms"] / out["inference_ms"], 4)
        if "raw_device" in self.stages:  # the device pipeline: the runtime on a tensor already on the device
            out["ratio_device"] = round(out["total_ms"] / out["raw_device_ms"], 4)
        if self.transfers:
            out["h2d_bytes"] = int(np.median([t[0] for t in self.transfers]))
            out["d2h_bytes"] = int(np.median([t[1] for t in self.transfers]))
        out["instances_mean"] = round(float(np.mean(self.instances)), 2)
        out["instances_max"] = int(max(self.instances))
        out["runs"] = self.runs
        return out


def run_benchmark(segmenter: Segmenter, images: Sequence[np.ndarray], runs: int, warmup: int = 3,
                  fusion: Optional[Callable[[int, FrameOutput], object]] = None) -> BenchReport:
    """Alternate a full ``segment`` and a bare runtime call on the same input ``runs`` times; also time
    the overlap ownership (label image + visible masks) the node does after each ``segment``, and
    ``fusion(image index, FrameOutput)`` (depth fusion and the occlusion order from depth) when given, as stage ``fusion``."""
    feeds = [segmenter.input_feed(image) for image in images]
    for i in range(warmup):
        segmenter.segment(images[i % len(images)])
        segmenter.backend.run(feeds[i % len(feeds)])
    stages: dict[str, list[float]] = {k: [] for k in ("preprocess", "inference", "postprocess", "total",
                                                      "raw_session", "ownership")}
    if fusion is not None:
        stages["fusion"] = []
    device = segmenter.device_pipeline
    if device is not None:
        stages["raw_device"] = []
        blobs = [device.resident_input(feed[segmenter.input.name]) for feed in feeds]
    instances, transfers = [], []
    for i in range(runs):
        image, feed = images[i % len(images)], feeds[i % len(feeds)]
        t0 = time.perf_counter()
        segmenter.backend.run(feed)
        raw_ms = (time.perf_counter() - t0) * 1e3
        if device is not None:
            t0 = time.perf_counter()
            device.run_resident(blobs[i % len(blobs)])
            stages["raw_device"].append((time.perf_counter() - t0) * 1e3)
        result = segmenter.segment(image)
        t1 = time.perf_counter()
        output = resolved(result)  # the host pipeline resolves here; the device one already has
        stages["ownership"].append((time.perf_counter() - t1) * 1e3)
        transfers.append(result.transfer_bytes)
        if fusion is not None:
            t2 = time.perf_counter()
            fusion(i % len(images), output)
            stages["fusion"].append((time.perf_counter() - t2) * 1e3)
        times = result.times
        stages["preprocess"].append(times.preprocess_ms)
        stages["inference"].append(times.inference_ms)
        stages["postprocess"].append(times.postprocess_ms)
        stages["total"].append(times.total_ms)
        stages["raw_session"].append(raw_ms)
        instances.append(len(result.detections))
    return BenchReport(runs, stages, instances, transfers)


def run_batch_benchmark(segmenter: Segmenter, images: Sequence[np.ndarray], sizes: Sequence[int] = (1, 2, 4),
                        runs: int = 20, warmup: int = 2) -> list[dict]:
    """Throughput of B frames in one ``session.run`` against the same B frames one after another, for each B in
    ``sizes``, alternated in one loop: the whole Segmenter (``segment_batch`` vs B ``segment`` calls) and the bare
    runtime (one batch-B ``session.run`` vs B batch-1 runs). Per frame, medians; speedup = one by one / batched.
    Needs a model with a batch axis for B > 1 (``Segmenter.batch_capacity``)."""
    capacity = segmenter.batch_capacity
    rows = []
    for size in sizes:
        if size > 1 and capacity is not None and capacity < size:
            raise ValueError(f"{segmenter.model_path.name} runs {capacity} frame(s) per session.run; "
                             "export it with --dynamic-batch to measure batches")
        frames = [(images[i % len(images)], "rgb") for i in range(size)]
        feeds = [segmenter.input_feed(image) for image, _ in frames]
        name = segmenter.input.name
        stacked = {name: np.concatenate([feed[name] for feed in feeds])}
        times: dict[str, list[float]] = {"batched": [], "one_by_one": [], "raw_batched": [], "raw_one_by_one": []}
        for run in range(warmup + runs):
            t0 = time.perf_counter()
            segmenter.segment_batch(frames, max_batch=size)
            t1 = time.perf_counter()
            for image, order in frames:
                segmenter.segment(image, order)
            t2 = time.perf_counter()
            segmenter.backend.run(stacked)
            t3 = time.perf_counter()
            for feed in feeds:
                segmenter.backend.run(feed)
            t4 = time.perf_counter()
            if run >= warmup:
                for key, ms in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                    times[key].append(ms * 1e3 / size)
        row = {"batch": size, **{f"{k}_ms_per_frame": round(float(np.median(v)), 3) for k, v in times.items()}}
        row["speedup"] = round(row["one_by_one_ms_per_frame"] / row["batched_ms_per_frame"], 3)
        row["raw_speedup"] = round(row["raw_one_by_one_ms_per_frame"] / row["raw_batched_ms_per_frame"], 3)
        rows.append(row)
    return rows
