"""The generator, the critic, and building both from a config."""

from __future__ import annotations

from typing import Any

import torch

from videogan.config import Config
from videogan.models.critic import Critic
from videogan.models.generator import Generator, VideoGenerator
from videogan.models.init import initialise
from videogan.models.layers import LayeredGenerator

__all__ = ["Critic", "Generator", "LayeredGenerator", "VideoGenerator", "build_critic", "build_generator", "initialise"]


def build_generator(config: Config, seed: int | None = None) -> VideoGenerator:
    g = config.model.generator
    shared: dict[str, Any] = dict(
        frames=config.frames,
        frame_size=config.data.frame_size,
        channels=config.data.channels,
        motion_dim=g.motion_dim,
        content_dim=g.content_dim,
        lstm_input=g.lstm_input,
        width=g.width,
        max_width=g.max_width,
        forget_bias=g.forget_bias,
        upsample=g.upsample,
        norm=g.norm,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed if seed is None else seed)
        model: VideoGenerator
        if g.kind == "layers":
            model = LayeredGenerator(**shared, sprites=g.sprites, sprite_scale=g.sprite_scale, background=g.background)
        else:
            model = Generator(**shared, first_frame=g.first_frame)
        initialise(model, config.model.init)
    return model


def build_critic(config: Config, seed: int | None = None) -> Critic:
    c, image = config.model.critic, config.model.image_critic
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed((config.train.seed if seed is None else seed) + 1)
        model = Critic(
            config.frames,
            config.data.frame_size,
            config.data.channels,
            tuple(c.widths),
            c.norm,
            c.dropout,
            c.minibatch_std,
            tuple(image.widths) if image.frames else None,
        )
        initialise(model, config.model.init)
    return model
