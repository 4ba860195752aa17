"""The generator, the critic, and building both from a config."""

from __future__ import annotations

import torch

from videogan.config import Config
from videogan.models.critic import Critic
from videogan.models.generator import Generator, VideoGenerator
from videogan.models.init import initialise
from videogan.models.layers import LayeredGenerator

__all__ = ["Critic", "Generator", "LayeredGenerator", "VideoGenerator", "build_critic", "build_generator", "initialise"]


def build_generator(config: Config, seed: int | None = None) -> VideoGenerator:
    g = config.model.generator
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed if seed is None else seed)
        model: VideoGenerator
        if g.kind == "layers":
            model = LayeredGenerator(
                config.frames,
                config.data.frame_size,
                config.data.channels,
                g.motion_dim,
                g.content_dim,
                g.lstm_input,
                g.width,
                g.max_width,
                g.forget_bias,
                g.upsample,
                g.norm,
                g.sprites,
                g.sprite_scale,
                g.background,
            )
            initialise(model, config.model.init)
            return model
        model = Generator(
            config.frames,
            config.data.frame_size,
            config.data.channels,
            g.motion_dim,
            g.content_dim,
            g.lstm_input,
            g.width,
            g.max_width,
            g.forget_bias,
            g.upsample,
            g.first_frame,
            g.norm,
        )
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
