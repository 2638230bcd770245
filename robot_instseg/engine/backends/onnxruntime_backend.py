"""ONNX Runtime backend with an ordered execution-provider list (TensorRT EP, CUDA EP, CPU).

A requested provider this onnxruntime build lacks is skipped with ONE warning that names
what was asked and what runs, rather than failing: a Jetson image without the TensorRT EP
still segments on CUDA or CPU.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import numpy as np
import onnxruntime as ort

from robot_instseg.engine.backends.base import BackendConfig, TensorInfo, check_model_file
from robot_instseg.engine.errors import ModelError

LOG = logging.getLogger(__name__)

PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
              "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(double)": "float64",
              "tensor(bool)": "bool"}


def resolve_providers(requested: tuple[str, ...], config: BackendConfig,
                      available: Optional[list[str]] = None) -> tuple[list, list[str]]:
    """Map short names to ORT providers with options; return (providers, names skipped)."""
    available = list(ort.get_available_providers() if available is None else available)
    chosen: list = []
    skipped: list[str] = []
    for short in requested:
        key = short.strip().lower()
        if not key:
            continue
        name = PROVIDER_NAMES.get(key, short)
        if name not in available:
            skipped.append(short)
            continue
        if name == "TensorrtExecutionProvider":
            cache = config.engine_cache_dir or os.path.expanduser("~/.cache/robot_instseg/trt_ep")
            options = {"device_id": config.device_id, "trt_fp16_enable": config.fp16,
                       "trt_engine_cache_enable": True, "trt_engine_cache_path": cache,
                       "trt_timing_cache_enable": True, "trt_timing_cache_path": cache}
            chosen.append((name, options))
        elif name == "CUDAExecutionProvider":
            chosen.append((name, {"device_id": config.device_id}))
        else:
            chosen.append(name)
    if "CPUExecutionProvider" not in [c if isinstance(c, str) else c[0] for c in chosen]:
        chosen.append("CPUExecutionProvider")  # always a last resort
    return chosen, skipped


class OnnxRuntimeBackend:
    """An onnxruntime InferenceSession behind the Backend interface, warmed up on load."""

    def __init__(self, path: Path, config: BackendConfig = BackendConfig()) -> None:
        self.path = check_model_file(path)
        providers, skipped = resolve_providers(config.providers, config)
        running = [p if isinstance(p, str) else p[0] for p in providers]
        if skipped:
            LOG.warning("execution provider(s) %s requested but not available in this onnxruntime "
                        "(available: %s); running on %s", ", ".join(skipped),
                        ", ".join(ort.get_available_providers()), ", ".join(running))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if config.num_threads > 0:
            options.intra_op_num_threads = config.num_threads
        if config.spin_wait:  # spin inside a run only: once it returns, the host work has the cores
            options.add_session_config_entry("session.force_spinning_stop", "1")
        else:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises several types for a bad file
            raise ModelError(f"model file {self.path} could not be loaded by onnxruntime: "
                             f"{str(exc).strip().splitlines()[0][:300]}") from exc
        self.inputs = [TensorInfo(i.name, _shape(i.shape), _ORT_TYPES.get(i.type, i.type))
                       for i in self.session.get_inputs()]
        self.outputs = [TensorInfo(o.name, _shape(o.shape), _ORT_TYPES.get(o.type, o.type))
                        for o in self.session.get_outputs()]
        self.output_names = [o.name for o in self.outputs]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.providers = self.session.get_providers()
        self.description = f"onnxruntime {ort.__version__} {self.providers[0]}"
        self.device = "cuda" if self.providers[0] in ("TensorrtExecutionProvider", "CUDAExecutionProvider") else "cpu"
        self._warmup_runs = config.warmup_runs

    def warmup(self, feeds: dict[str, np.ndarray]) -> None:
        for _ in range(self._warmup_runs):
            self.run(feeds)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self.output_names, feeds)
        return dict(zip(self.output_names, values))


def _shape(shape) -> tuple[Optional[int], ...]:
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)
