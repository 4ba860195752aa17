"""One critic step and one generator step, each a pure function of the weights, a real batch and
its random draws.

All randomness of a step (noise z, penalty mixing weights, instance noise,
dropout masks, smoothed labels) is drawn up front for the *global* batch from a
generator seeded by (seed, stream, counter). Under data parallelism each rank
takes its slice, so the ranks together compute exactly what one process would,
and a resumed run redraws exactly what an unbroken run drew.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from videogan.losses import critic_loss, generator_loss, gradient_penalty
from videogan.models import Critic, Generator

STREAMS = {"critic": 1, "generator": 2}


def step_generator(seed: int, stream: str, counter: int, device: torch.device) -> torch.Generator:
    """A generator whose state depends only on (seed, stream, counter), for any integer seed."""
    key = hashlib.sha256(f"{seed}/{STREAMS[stream]}/{counter}".encode()).digest()
    gen = torch.Generator(device=device)
    gen.manual_seed(int.from_bytes(key[:8], "little") >> 1)
    return gen


@dataclass
class Draws:
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    def __getitem__(self, key: str) -> torch.Tensor | None:
        return self.tensors.get(key)

    def shard(self, rank: int, world: int) -> "Draws":
        return Draws({k: v.chunk(world)[rank] for k, v in self.tensors.items()})


@dataclass(frozen=True)
class StepSetup:
    """What a step needs to know about the models and the loss."""

    loss: str
    gp_lambda: float
    noise_dim: int
    video_shape: tuple[int, ...]
    feature_dim: int
    dropout: float

    @classmethod
    def of(cls, generator: Generator, critic: Critic, loss: str, gp_lambda: float) -> "StepSetup":
        shape = (generator.channels, generator.frames, generator.frame_size, generator.frame_size)
        dim = generator.noise_dim + generator.frames * generator.step_noise_dim()
        return cls(loss, gp_lambda, dim, shape, critic.feature_dim, critic.dropout)


def draw(setup: StepSetup, batch: int, sigma: float, gen: torch.Generator, critic_step: bool) -> Draws:
    device = gen.device
    t: dict[str, torch.Tensor] = {"z": torch.rand(batch, setup.noise_dim, generator=gen, device=device) * 2 - 1}
    inputs = ["real", "fake", "mixed"] if critic_step else ["fake"]
    if not (critic_step and setup.loss == "wgan-gp" and setup.gp_lambda > 0):
        inputs = [i for i in inputs if i != "mixed"]
    for name in inputs:
        if setup.dropout > 0:
            keep = torch.rand(batch, setup.feature_dim, generator=gen, device=device) >= setup.dropout
            t[f"mask_{name}"] = keep.float()
    if sigma > 0:
        for name in ("real", "fake") if critic_step else ("fake",):
            t[f"noise_{name}"] = sigma * torch.randn(batch, *setup.video_shape, generator=gen, device=device)
    if critic_step and "mixed" in inputs:
        t["eps"] = torch.rand(batch, generator=gen, device=device)
    if critic_step and setup.loss == "alternative":
        t["real_labels"] = torch.empty(batch, device=device).uniform_(0.7, 1.0, generator=gen)
    return Draws(t)


def _noisy(x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    return x if noise is None else x + noise.to(x.dtype)


def critic_step_loss(generator: Generator, critic: Critic, real: torch.Tensor, d: Draws,
                     setup: StepSetup, critic_fn: Callable | None = None) -> tuple[torch.Tensor, dict]:
    """The critic's loss on one batch (penalty included); `critic_fn` may be a compiled critic."""
    critic_fn = critic_fn or critic
    with torch.no_grad():
        fake = generator(d["z"])
    real_in, fake_in = _noisy(real, d["noise_real"]), _noisy(fake, d["noise_fake"])
    real_scores = critic_fn(real_in, d["mask_real"])
    fake_scores = critic_fn(fake_in, d["mask_fake"])
    loss = critic_loss(setup.loss, real_scores, fake_scores, d["real_labels"])
    stats = {"wasserstein": (real_scores.mean() - fake_scores.mean()).detach()}
    if d["eps"] is not None:
        # The penalty needs double backward, which torch.compile does not do: always the eager critic.
        penalty = gradient_penalty(lambda x: critic(x, d["mask_mixed"]), real_in, fake_in, d["eps"])
        loss = loss + setup.gp_lambda * penalty
        stats["gradient_penalty"] = penalty.detach()
    return loss, stats


def generator_step_loss(generator: Generator, critic: Critic, d: Draws, setup: StepSetup,
                        generator_fn: Callable | None = None, critic_fn: Callable | None = None) -> torch.Tensor:
    fake = (generator_fn or generator)(d["z"])
    scores = (critic_fn or critic)(_noisy(fake, d["noise_fake"]), d["mask_fake"])
    return generator_loss(setup.loss, scores)
