"""Which device a process computes on: the one place that reads `train.device`, `evaluator.device`
and `evaluate.device`, and, under torchrun, the GPU of this process's local rank."""

from __future__ import annotations

import contextlib
import os
from typing import TypeVar

import torch

from videogan.errors import ConfigError


def local_rank() -> int:
    """This process's GPU index on its machine (torchrun's LOCAL_RANK; 0 for a single process)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def resolve_device(preference: str, key: str) -> torch.device:
    """`preference` (auto, cpu, cuda) as a device; cuda:<local rank> when CUDA is there and wanted.
    `key` names the setting in the error a machine without CUDA gets."""
    if preference == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key} is 'cuda' but no CUDA device is visible on this machine; set {key}=auto (or cpu)")
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        index = local_rank()
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"local rank {index} has no GPU: this machine has {torch.cuda.device_count()}; "
                "start at most that many processes per node (torchrun --nproc_per_node)"
            )
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


M = TypeVar("M", bound=torch.nn.Module)


def to_layout(module: M, memory_format: torch.memory_format) -> M:
    """`module` with its weights in `memory_format` (channels_last, channels_last_3d), in place."""
    return module.to(memory_format=memory_format)  # type: ignore[call-overload]  # the stub lacks this keyword


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bfloat16 matmuls beat float32 here: a CUDA GPU that supports them, or a CPU with bf16 units
    (AVX512-BF16 or AMX). Elsewhere PyTorch emulates bf16 on the CPU, slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def uses_bf16(amp: str, device: torch.device) -> bool:
    """`train.amp` on this device: bf16 always, none never, auto where bf16 is fast."""
    return amp == "bf16" or (amp == "auto" and bf16_is_fast(device))


def autocast(amp: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on `device` where `amp` asks for it (see uses_bf16), else a no-op."""
    if uses_bf16(amp, device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
