"""Native TensorRT (10.x named-tensor API) backend for Jetson and RTX: builds an engine from
the ONNX, caches it (see tensorrt_cache), reuses it, and rebuilds when the cache is stale or
the engine will not deserialize.

Needs the ``tensorrt`` Python package and ``cuda-python``; both are imported only here, so
the rest of the engine runs without them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from robot_instseg.engine.backends import tensorrt_cache as cache
from robot_instseg.engine.backends.base import BackendConfig, TensorInfo, check_model_file
from robot_instseg.engine.errors import ModelError
from robot_instseg.engine.model_paths import file_sha256

LOG = logging.getLogger(__name__)


def import_tensorrt():
    """Return (tensorrt, cudart) or raise ModelError saying what to install."""
    try:
        import tensorrt as trt  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ModelError("backend 'tensorrt' needs the tensorrt Python package (JetPack ships it; on x86 "
                         "'pip install tensorrt'); or use backend 'onnxruntime' with providers "
                         "'tensorrt,cuda,cpu'") from exc
    try:
        from cuda.bindings import runtime as cudart  # type: ignore[import-not-found]
    except ImportError:
        try:
            from cuda import cudart  # type: ignore[import-not-found,no-redef]
        except ImportError as exc:
            raise ModelError("backend 'tensorrt' needs cuda-python ('pip install cuda-python')") from exc
    return trt, cudart


def _check(result):
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else rest


class TensorRTBackend:
    """A TensorRT engine behind the Backend interface (static shapes, one CUDA stream)."""

    def __init__(self, path: Path, config: BackendConfig = BackendConfig(backend="tensorrt")) -> None:
        self.trt, self.cudart = import_tensorrt()
        trt, cudart = self.trt, self.cudart
        self.path = check_model_file(path)
        self.logger = trt.Logger(trt.Logger.WARNING)
        _check(cudart.cudaSetDevice(config.device_id))
        props = _check(cudart.cudaGetDeviceProperties(config.device_id))
        gpu = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
        runtime = trt.Runtime(self.logger)
        if self.path.suffix in (".engine", ".plan"):
            self.engine = runtime.deserialize_cuda_engine(self.path.read_bytes())
            if self.engine is None:
                raise ModelError(f"{self.path} is not a TensorRT engine for TensorRT {trt.__version__} on {gpu}")
        else:
            self.engine = self._cached_or_built(runtime, gpu, config)
        self.context = self.engine.create_execution_context()
        self.stream = _check(cudart.cudaStreamCreate())
        self.inputs: list[TensorInfo] = []
        self.outputs: list[TensorInfo] = []
        self._buffers: dict = {}
        self._fix_batch_axis()
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise ModelError(f"{self.path}: tensor {name} has a dynamic shape {shape}; export with a fixed size")
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            info = TensorInfo(name, shape, dtype.name)
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs).append(info)
            host = np.empty(shape, dtype)
            device = _check(cudart.cudaMalloc(host.nbytes))
            self._buffers[name] = (host, device)
            self.context.set_tensor_address(name, device)
        self.metadata = self._onnx_metadata()
        self.description = f"tensorrt {trt.__version__} {gpu}{' fp16' if config.fp16 else ''}"
        self.device = "cuda"

    def _fix_batch_axis(self) -> None:
        """An engine with a dynamic batch axis runs at its optimisation profile's chosen batch (ours: 1)."""
        trt = self.trt
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            if self.engine.get_tensor_mode(name) != trt.TensorIOMode.INPUT:
                continue
            shape = tuple(self.engine.get_tensor_shape(name))
            if shape and shape[0] < 0:
                _, opt, _ = self.engine.get_tensor_profile_shape(name, 0)
                if not self.context.set_input_shape(name, tuple(opt)):
                    raise ModelError(f"{self.path}: input {name} does not accept its profile's shape {tuple(opt)}")

    @staticmethod
    def _batch_one_profile(trt, builder, network, build_config) -> None:
        """A dynamic batch axis (``export --dynamic-batch``, the bundled model) is built at batch 1 here: the native
        TensorRT backend runs one frame at a time; other dynamic axes stay refused."""
        profile = None
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            shape = tuple(tensor.shape)
            if shape and shape[0] < 0 and all(d > 0 for d in shape[1:]):
                profile = profile or builder.create_optimization_profile()
                one = (1, *shape[1:])
                profile.set_shape(tensor.name, one, one, one)
        if profile is not None:
            build_config.add_optimization_profile(profile)

    def _cached_or_built(self, runtime, gpu: str, config: BackendConfig):
        trt = self.trt
        key = cache.EngineKey(file_sha256(self.path), trt.__version__, gpu, config.fp16)
        cache_dir = Path(config.engine_cache_dir or os.path.expanduser("~/.cache/robot_instseg/engines"))
        engine_path, reason = cache.lookup(cache_dir, self.path, key)
        if engine_path is not None:
            engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
            if engine is not None:
                LOG.info("loaded cached TensorRT engine %s", engine_path)
                return engine
            reason = f"cached engine {engine_path} did not deserialize"
        LOG.warning("building TensorRT engine for %s (%s); this takes minutes once", self.path, reason)
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(self.path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelError(f"TensorRT could not parse {self.path}: {errors}")
        build_config = builder.create_builder_config()
        self._batch_one_profile(trt, builder, network, build_config)
        if config.fp16:
            build_config.set_flag(trt.BuilderFlag.FP16)
        serialized = builder.build_serialized_network(network, build_config)
        if serialized is None:
            raise ModelError(f"TensorRT failed to build an engine from {self.path}")
        stored = cache.store(cache_dir, self.path, key, bytes(serialized))
        LOG.info("cached TensorRT engine at %s", stored)
        return runtime.deserialize_cuda_engine(bytes(serialized))

    def _onnx_metadata(self) -> dict[str, str]:
        if self.path.suffix != ".onnx":
            return {}
        import onnx

        model = onnx.load(str(self.path), load_external_data=False)
        return {p.key: p.value for p in model.metadata_props}

    def warmup(self, feeds: dict[str, np.ndarray]) -> None:
        self.run(feeds)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart = self.cudart
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for info in self.inputs:
            host, device = self._buffers[info.name]
            np.copyto(host, feeds[info.name], casting="same_kind")
            _check(cudart.cudaMemcpyAsync(device, host.ctypes.data, host.nbytes, h2d, self.stream))
        if not self.context.execute_async_v3(self.stream):
            raise RuntimeError("TensorRT execution failed")
        for info in self.outputs:
            host, device = self._buffers[info.name]
            _check(cudart.cudaMemcpyAsync(host.ctypes.data, device, host.nbytes, d2h, self.stream))
        _check(cudart.cudaStreamSynchronize(self.stream))
        return {info.name: self._buffers[info.name][0].copy() for info in self.outputs}
