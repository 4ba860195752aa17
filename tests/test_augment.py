"""train.augment: one draw per clip for all its frames, differentiable, keyed like every other draw."""

import torch
from support import tiny_config

from videogan.config import AugmentConfig
from videogan.training.augment import COLUMNS, augment
from videogan.training.state import TrainingState
from videogan.training.steps import StepSetup, draw, step_rng

CPU = torch.device("cpu")
ALL = AugmentConfig(translation=0.25, cutout=0.25, colour=True)


def dots(batch=6, frames=8, size=16) -> torch.Tensor:
    """One bright pixel per clip moving one column per frame, on the dark background."""
    video = torch.full((batch, 1, frames, size, size), -1.0)
    for t in range(frames):
        video[:, :, t, 8, 4 + t] = 1.0
    return video


def test_every_frame_of_a_clip_gets_the_same_shift_and_cut():
    static = dots()[:, :, :1].expand(-1, -1, 8, -1, -1).contiguous()
    u = torch.rand(6, COLUMNS, generator=torch.Generator().manual_seed(0))
    out = augment(static, u, ALL)
    assert torch.equal(out, out[:, :, :1].expand_as(out))  # static clips stay static
    moving = augment(dots(), u, AugmentConfig(translation=0.25))
    where = [(moving[:, 0, t] == 1).nonzero()[:, 1:] for t in range(8)]  # (row, column) of the dot per frame
    for t in range(1, 8):
        shifted = where[t] - where[0]
        kept = shifted[:, 1] == t  # the dot moved one column a frame, under one shift for the whole clip
        assert kept.all() and (shifted[:, 0] == 0).all()
    assert not torch.equal(moving, dots())


def test_clips_get_their_own_draws_and_the_augmentation_is_differentiable():
    video = dots().requires_grad_(True)
    u = torch.rand(6, COLUMNS, generator=torch.Generator().manual_seed(1))
    out = augment(video, u, ALL)
    assert len({tuple(out[i].flatten().tolist()) for i in range(6)}) > 1
    (out * torch.randn_like(out)).sum().backward()
    assert video.grad is not None and video.grad.abs().sum() > 0


def test_draws_hold_the_augmentation_only_when_it_is_on():
    cfg = tiny_config()
    state = TrainingState.fresh(cfg, CPU)
    plain = StepSetup.of(state.generator, state.critic, "wgan-gp", 200.0)
    augmented = StepSetup.of(state.generator, state.critic, "wgan-gp", 200.0, ALL)
    off = draw(plain, 8, 0.1, step_rng(0, "critic", 3, CPU), True)
    on = draw(augmented, 8, 0.1, step_rng(0, "critic", 3, CPU), True)
    again = draw(augmented, 8, 0.1, step_rng(0, "critic", 3, CPU), True)
    assert not any(k.startswith("augment") for k in off.tensors)
    assert on["augment_real"].shape == on["augment_fake"].shape == (8, COLUMNS)
    assert torch.equal(on["augment_real"], again["augment_real"])  # keyed by (seed, stream, counter)
    assert "augment_fake" in draw(augmented, 8, 0.1, step_rng(0, "generator", 3, CPU), False).tensors
