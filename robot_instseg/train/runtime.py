"""Where and how training arithmetic runs: the device, bfloat16 autocast, and the weight EMA
that is the model we deploy."""

from __future__ import annotations

import copy
import math
from typing import Optional

import torch


class ModelEMA:
    """Exponential moving average of the weights, ramped up over the first iterations."""

    def __init__(self, model: torch.nn.Module, decay: float, tau: float = 500.0) -> None:
        self.ema = copy.deepcopy(model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.decay, self.tau, self.updates = decay, tau, 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        model_state = model.state_dict()
        for name, value in self.ema.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(model_state[name].detach(), alpha=1 - d)
            else:
                value.copy_(model_state[name])


def pick_device(name: str) -> torch.device:
    """The torch device ``name`` asks for; 'auto' = CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but torch sees no CUDA device")
    return device


def autocast_dtype(amp: str, device: torch.device) -> Optional[torch.dtype]:
    """bfloat16 autocast roughly halves CPU step time where the CPU has bf16 instructions (avx512_bf16,
    AMX); without them (AVX2 only) torch emulates bf16 and a step is about 8x slower than float32, so
    "auto" uses it only where the hardware has it. "bf16" forces it."""
    if amp == "off":
        return None
    if amp not in ("auto", "bf16"):
        raise ValueError(f"amp must be auto, bf16 or off, got {amp!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if amp == "bf16" or cpu_has_bf16() else None


def cpu_has_bf16() -> bool:
    """Whether this CPU runs bfloat16 natively (AVX512-BF16 or AMX), as torch sees it."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(check()) for check in checks if check is not None)
