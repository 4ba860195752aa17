"""The GAN losses and the two gradient penalties.

Every critic returns one score per video; for every loss but wgan-gp and hinge it is a logit.
  wgan-gp         critic: D(fake) - D(real) + lambda * (|grad D(x_hat)| - 1)^2;  generator: -D(fake)
  basic           minimax BCE; the generator minimises log(1 - D(G(z)))
  alternative     non-saturating: the generator minimises -log D(G(z)); real labels ~ U(0.7, 1.0)
  non-saturating  the same without label smoothing (Goodfellow et al. 2014; StyleGAN2's, with R1)
  hinge           critic: relu(1 - D(real)) + relu(1 + D(fake)); generator: -D(fake) (SNGAN, BigGAN)
R1 (Mescheder et al. 2018), gamma / 2 * |grad D(real)|^2, is a penalty any loss can add (train.r1_gamma).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LOGIT_LOSSES = ("basic", "alternative", "non-saturating")


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


def r1_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores of `real`, mean over the batch of |grad_x D(x)|^2 at the real inputs).

    The scores come from the same forward pass, so the caller need not score the reals twice."""
    real = real.detach().requires_grad_(True)
    scores = critic(real)
    (grad,) = torch.autograd.grad(scores.sum(), real, create_graph=True)
    return scores, grad.flatten(1).pow(2).sum(1).mean()


def critic_loss(
    kind: str, real_scores: torch.Tensor, fake_scores: torch.Tensor, real_labels: torch.Tensor | None = None
) -> torch.Tensor:
    """The critic's loss without a penalty. `real_labels` (B,) are the smoothed targets of `alternative`."""
    if kind == "wgan-gp":
        return fake_scores.mean() - real_scores.mean()
    if kind == "hinge":
        return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()
    if kind in ("basic", "non-saturating"):
        real_labels = torch.ones_like(real_scores)
    elif real_labels is None:
        raise ValueError("the alternative loss needs smoothed real labels")
    real_term = F.binary_cross_entropy_with_logits(real_scores, real_labels.to(real_scores.dtype))
    fake_term = F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores))
    return real_term + fake_term


def generator_loss(kind: str, fake_scores: torch.Tensor) -> torch.Tensor:
    if kind in ("wgan-gp", "hinge"):
        return -fake_scores.mean()
    if kind == "basic":
        return -F.softplus(fake_scores).mean()  # log(1 - sigmoid(s)) = -softplus(s)
    return F.softplus(-fake_scores).mean()  # -log sigmoid(s)
