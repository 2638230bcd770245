"""Run a loaded backend on tensors that stay on the device: no host copy of inputs or outputs.

- ONNX Runtime: IO binding. The input is bound to the torch tensor's memory; each output to a
  torch tensor allocated once on the same device, so ``run_with_iobinding`` writes the outputs
  where the decode reads them (on CUDA that removes the 4.9 MB float input upload and every
  output download that ``session.run`` makes).
- Native TensorRT: the engine's tensor addresses point at torch tensors and it runs on torch's
  current CUDA stream.

Static output shapes only, but for a dynamic batch axis, run at 1 (YOLO-seg exports and the bundled model
have them); a model with another dynamic output axis is refused with a ModelError, and the host pipeline
remains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from robot_instseg.engine.backends.base import Backend, TensorInfo
from robot_instseg.engine.errors import ModelError

if TYPE_CHECKING:
    import torch


class DeviceRunner(Protocol):
    """A backend bound to device tensors: input tensor in, output tensors (on the device) out."""

    input_dtype: "torch.dtype"

    def run(self, blob: "torch.Tensor") -> dict[str, "torch.Tensor"]: ...


def _torch_dtype(name: str) -> "torch.dtype":
    import torch

    dtypes = {"float32": torch.float32, "float16": torch.float16, "int64": torch.int64, "int32": torch.int32,
              "uint8": torch.uint8, "bool": torch.bool}
    if name not in dtypes:
        raise ModelError(f"tensor dtype {name} is not supported by the device pipeline")
    return dtypes[name]


def _static_shape(info: TensorInfo, what: str) -> tuple[int, ...]:
    """The shape of one frame's output: a dynamic batch axis (first, of a rank-3+ tensor) is 1, as the device
    pipeline runs one frame at a time; any other dynamic axis is refused."""
    if len(info.shape) >= 3 and info.shape[0] is None:
        info = TensorInfo(info.name, (1, *info.shape[1:]), info.dtype)
    if any(d is None for d in info.shape):
        raise ModelError(f"{what} {info.name} has a dynamic shape {list(info.shape)}; the device pipeline needs "
                         "fixed output shapes (export with a fixed image size), or use pipeline 'host'")
    return tuple(int(d) for d in info.shape)  # type: ignore[arg-type]


class OrtBindingRunner:
    """onnxruntime IO binding on torch tensors (CPU or CUDA)."""

    def __init__(self, backend: Backend, device: "torch.device", input_shape: tuple[int, ...]) -> None:
        import torch

        self.session = backend.session  # type: ignore[attr-defined]
        self.device = device
        self.device_type = "cuda" if device.type == "cuda" else "cpu"
        self.device_id = device.index or 0
        self.input = backend.inputs[0]
        self.input_dtype = _torch_dtype(self.input.dtype)
        self.input_shape = input_shape
        self.outputs = {o.name: torch.empty(_static_shape(o, "output"), dtype=_torch_dtype(o.dtype), device=device)
                        for o in backend.outputs}
        # A dynamic batch axis on the input and every output: several frames can run at once (``run`` of an
        # (N, 3, H, W) blob), each batch size with output tensors of its own, allocated once.
        self.batches = len(self.input.shape) == 4 and self.input.shape[0] is None and all(
            len(o.shape) >= 3 and o.shape[0] is None for o in backend.outputs)
        self._by_batch: dict[int, dict[str, "torch.Tensor"]] = {1: self.outputs}
        self._bound = 0
        self.binding = self.session.io_binding()
        self._bind_outputs(1)

    def _bind_outputs(self, batch: int) -> dict[str, "torch.Tensor"]:
        import torch

        outputs = self._by_batch.get(batch)
        if outputs is None:
            outputs = {name: torch.empty((batch, *one.shape[1:]), dtype=one.dtype, device=self.device)
                       for name, one in self.outputs.items()}
            self._by_batch[batch] = outputs
        if self._bound != batch:
            for name, tensor in outputs.items():
                self.binding.bind_output(name, self.device_type, self.device_id, _numpy_dtype(tensor),
                                         tuple(tensor.shape), tensor.data_ptr())
            self._bound = batch
        return outputs

    def run(self, blob: "torch.Tensor") -> dict[str, "torch.Tensor"]:
        batch = int(blob.shape[0]) if self.batches and blob.dim() == 4 else 1
        blob = (blob if batch > 1 else blob.reshape(self.input_shape)).contiguous()
        outputs = self._bind_outputs(batch)
        self.binding.bind_input(self.input.name, self.device_type, self.device_id, _numpy_dtype(blob),
                                tuple(blob.shape), blob.data_ptr())
        self.binding.synchronize_inputs()  # torch's stream has written the input
        self.session.run_with_iobinding(self.binding)
        self.binding.synchronize_outputs()
        return outputs


class TensorRTRunner:
    """A native TensorRT engine executing on torch tensors on torch's current CUDA stream."""

    def __init__(self, backend: Backend, device: "torch.device", input_shape: tuple[int, ...]) -> None:
        import torch

        if device.type != "cuda":
            raise ModelError("the native TensorRT backend runs on a CUDA device only")
        self.context = backend.context  # type: ignore[attr-defined]
        self.input = backend.inputs[0]
        self.input_dtype = _torch_dtype(self.input.dtype)
        self.input_shape = input_shape
        self.outputs = {o.name: torch.empty(_static_shape(o, "output"), dtype=_torch_dtype(o.dtype), device=device)
                        for o in backend.outputs}
        for name, tensor in self.outputs.items():
            self.context.set_tensor_address(name, tensor.data_ptr())

    def run(self, blob: "torch.Tensor") -> dict[str, "torch.Tensor"]:
        import torch

        blob = blob.reshape(self.input_shape).contiguous()
        self.context.set_tensor_address(self.input.name, blob.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream(blob.device).cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        return self.outputs


def bind_runner(backend: Backend, device: "torch.device", input_shape: tuple[int, ...]) -> DeviceRunner:
    """The device runner for ``backend``: IO binding for onnxruntime, bindings for native TensorRT."""
    if hasattr(backend, "session"):
        return OrtBindingRunner(backend, device, input_shape)
    if hasattr(backend, "context"):
        return TensorRTRunner(backend, device, input_shape)
    raise ModelError(f"backend {backend.description} cannot run on device tensors")


def _numpy_dtype(tensor: "torch.Tensor") -> type:
    import torch

    return {torch.float32: np.float32, torch.float16: np.float16, torch.int64: np.int64, torch.int32: np.int32,
            torch.uint8: np.uint8, torch.bool: np.bool_}[tensor.dtype]
