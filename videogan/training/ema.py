"""Exponential moving average of the generator's weights: what snapshots, checkpoints and samples use.

GAN weights oscillate around a good solution; their running average sits nearer to it
(Yazici et al. 2019, "The unusual effectiveness of averaging in GAN training"; the
sampling generator of Karras et al.'s StyleGAN). The decay warms up as (1 + n) / (10 + n)
so that a short run is not dominated by its random initial weights.
"""

from __future__ import annotations

import copy
from typing import TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)


def averaged_copy(module: M) -> M:
    average = copy.deepcopy(module)
    average.requires_grad_(False)
    return average


def warmed_up_decay(decay: float, updates: int) -> float:
    return min(decay, (1 + updates) / (10 + updates))


@torch.no_grad()
def update_average(average: nn.Module, live: nn.Module, decay: float, keep: torch.Tensor | None = None) -> None:
    """average <- average + (1 - decay) * (live - average), parameters and buffers, in foreach ops.
    `keep`, a 0-d device tensor, scales the step (0 skips it) without a host read: it multiplies the
    differences as a tensor (`torch._foreach_lerp_` would take it as a Python scalar, reading it on the
    host at every generator step)."""
    averaged: list[torch.Tensor] = list(average.parameters())
    current: list[torch.Tensor] = list(live.parameters())
    if keep is None:
        torch._foreach_lerp_(averaged, current, 1.0 - decay)
    else:
        steps = list(torch._foreach_sub(current, averaged))
        torch._foreach_mul_(steps, keep * (1.0 - decay))
        torch._foreach_add_(averaged, steps)
    for a, b in zip(average.buffers(), live.buffers()):
        a.copy_(b)
