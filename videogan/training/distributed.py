"""Data parallelism under torchrun, with explicit gradient averaging.

DistributedDataParallel averages gradients from hooks that fire as `.grad`
fills during one backward per forward. The gradient penalty breaks both
assumptions: it runs the critic forward three times before one backward, and
its inner `autograd.grad` must not trigger a reduction. So the ranks start from
rank 0's weights, every backward runs locally, and the gradients are averaged
in one flat all-reduce before the optimiser step: the same arithmetic DDP does,
correct for any number of forwards and for double backward.

    torchrun --standalone --nproc_per_node=8 -m videogan.cli train --params params.yaml
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def init_from_env(device: torch.device) -> Rank:
    """Join the process group torchrun describes in the environment; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Rank()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Rank(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def broadcast_parameters(module: nn.Module, rank: Rank) -> None:
    if rank.distributed:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def average_gradients(params: list[nn.Parameter], rank: Rank) -> None:
    if not rank.distributed:
        return
    grads = [p.grad for p in params if p.grad is not None]
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat /= rank.world
    for grad, synced in zip(grads, _unflatten_dense_tensors(flat, grads)):
        grad.copy_(synced)


def all_ranks_mean(rank: Rank, value: torch.Tensor) -> torch.Tensor:
    """The mean of a 0-d tensor over ranks, on the device (no host read), so that every rank sees the
    same loss: the same finite flag and the same threshold decisions."""
    if not rank.distributed:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / rank.world
