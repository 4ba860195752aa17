"""The three GAN losses and the WGAN-GP gradient penalty.

Every critic returns one score per video; for `basic` and `alternative` it is a logit.
  wgan-gp      critic: D(fake) - D(real) + lambda * (|grad D(x_hat)| - 1)^2;  generator: -D(fake)
  basic        minimax BCE; the generator minimises log(1 - D(G(z)))
  alternative  non-saturating: the generator minimises -log D(G(z)); real labels ~ U(0.7, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """mean over the batch of (|grad_x D(x)| - 1)^2 at x = eps * real + (1 - eps) * fake.

    `eps` (B,) comes from the caller so that a step is a pure function of its draws.
    create_graph=True keeps the penalty differentiable w.r.t. the critic's weights.
    """
    shape = (-1,) + (1,) * (real.dim() - 1)
    x_hat = (eps.view(shape) * real + (1 - eps.view(shape)) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def critic_loss(
    kind: str, real_scores: torch.Tensor, fake_scores: torch.Tensor, real_labels: torch.Tensor | None = None
) -> torch.Tensor:
    """The critic's loss without the penalty. `real_labels` (B,) are the smoothed targets of `alternative`."""
    if kind == "wgan-gp":
        return fake_scores.mean() - real_scores.mean()
    if kind == "basic":
        real_labels = torch.ones_like(real_scores)
    elif real_labels is None:
        raise ValueError("the alternative loss needs smoothed real labels")
    real_term = F.binary_cross_entropy_with_logits(real_scores, real_labels.to(real_scores.dtype))
    fake_term = F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores))
    return real_term + fake_term


def generator_loss(kind: str, fake_scores: torch.Tensor) -> torch.Tensor:
    if kind == "wgan-gp":
        return -fake_scores.mean()
    if kind == "basic":
        return -F.softplus(fake_scores).mean()  # log(1 - sigmoid(s)) = -softplus(s)
    return F.softplus(-fake_scores).mean()  # -log sigmoid(s)
