"""Optimisers per parameter group (critic, decoder, LSTM), learning-rate decay, gradient clipping."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from videogan.config import OptimizerConfig


def build_optimizer(params: Iterable[nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """Fused implementations (one kernel for all tensors, on CUDA and CPU alike). They read
    `optimizer.found_inf`, a device flag that skips the whole update when it is 1, which is how a
    non-finite loss stops training without the host reading the loss (videogan.training.health)."""
    params = list(params)
    if cfg.type == "adam":
        return torch.optim.Adam(
            params, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]), weight_decay=cfg.weight_decay, fused=True
        )
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=True)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimizerConfig) -> torch.optim.lr_scheduler.ExponentialLR:
    """Exponential decay per generator iteration; gamma 1 (constant) when `lr_decay` is null."""
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=cfg.lr_decay or 1.0)


def grad_norm(params: Iterable[nn.Parameter]) -> float:
    """Total L2 norm of the gradients of `params` (0 when none has a gradient)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))


def clip_gradients(params: Iterable[nn.Parameter], max_norm: float, mode: str) -> None:
    """`per_parameter`: each tensor's gradient scaled to norm <= max_norm on its own (the original's
    choice: a global norm let the decoder's large gradients starve the LSTM); `global`: the total norm."""
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad or mode == "none":
        return
    if mode == "global":
        torch.nn.utils.clip_grad_norm_(with_grad, max_norm, foreach=True)
        return
    grads = [p.grad for p in with_grad if p.grad is not None]
    norms = torch.stack(torch._foreach_norm(grads))
    scales: list[torch.Tensor] = list((max_norm / (norms + 1e-6)).clamp_(max=1.0).unbind())
    torch._foreach_mul_(grads, scales)
