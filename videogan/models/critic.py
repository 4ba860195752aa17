"""Critic: the 3D-convolutional discriminator of Vondrick et al. (VGAN), no normalisation by default.

Four Conv3d (kernel 4, stride 2, padding 1, LeakyReLU 0.2) take a (B, C, T, H, W)
video to (B, 512, T', H/16, W/16); once time has shrunk to one step it is no
longer strided, so any T >= 8 fits. Dropout, then a linear head gives one score
(the WGAN critic value, or the logit for the basic and alternative losses).
Optionally (`minibatch_std`, off in the original) one more feature map before the
head carries the batch's spread (ProGAN, StyleGAN), so the critic sees a collapse.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def minibatch_stddev(x: torch.Tensor, group: int) -> torch.Tensor:
    """x (B, C, ...) -> x with one more channel: the mean over features of the standard deviation across each
    group of `group` samples (Karras et al. 2018), the same for every position of a sample."""
    g = math.gcd(group, x.shape[0])  # groups must divide the batch
    y = x.float().reshape(g, -1, *x.shape[1:])
    spread = (y.var(0, unbiased=False) + 1e-8).sqrt().mean(dim=tuple(range(1, y.dim() - 1)))  # (B / g,)
    spread = spread.repeat(g).to(x.dtype).reshape(-1, 1, *([1] * (x.dim() - 2)))
    return torch.cat([x, spread.expand(-1, 1, *x.shape[2:])], 1)


def _time_after(frames: int, layers: int) -> tuple[list[tuple[int, int, int]], int]:
    """Per layer (kernel, stride, padding) along time, and the time length at the end."""
    specs = []
    for _ in range(layers):
        spec = (4, 2, 1) if frames >= 2 else (1, 1, 0)
        specs.append(spec)
        k, s, p = spec
        frames = (frames + 2 * p - k) // s + 1
    return specs, frames


class ImageCritic(nn.Module):
    """Single frames (N, C, H, W) -> scores (N,): Conv2d (k4, s2, p1) + LeakyReLU 0.2 per width, a linear head."""

    def __init__(self, frame_size: int, channels: int, widths: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        cin = channels
        for cout in widths:
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            cin = cout
        side = frame_size // 2 ** len(widths)
        if side < 1:
            raise ValueError(f"frame size {frame_size} is too small for {len(widths)} image critic layers")
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin * side * side, 1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(frames).flatten(1)).squeeze(1)


def pick_frames(video: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """video (B, C, T, H, W), u (B, k) uniform in [0, 1) -> the k drawn frames of each video, (B * k, C, H, W)."""
    b, c, t, h, w = video.shape
    index = (u * t).long().clamp_(max=t - 1)
    return video[torch.arange(b, device=video.device)[:, None], :, index].reshape(-1, c, h, w)


class Critic(nn.Module):
    def __init__(
        self,
        frames: int,
        frame_size: int,
        channels: int,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        norm: str = "none",
        dropout: float = 0.2,
        minibatch_std: int = 0,
        image_widths: tuple[int, ...] | None = None,
    ):
        """`image_widths`: an ImageCritic of single frames as `self.image` (scored separately: the training steps
        call it on drawn frames, and it has its own optimiser, train.optim.image_critic)."""
        super().__init__()
        self.image = ImageCritic(frame_size, channels, image_widths) if image_widths else None
        time_specs, time_out = _time_after(frames, len(widths))
        layers: list[nn.Module] = []
        cin = channels
        for cout, (kt, st, pt) in zip(widths, time_specs):
            layers.append(nn.Conv3d(cin, cout, (kt, 4, 4), (st, 2, 2), (pt, 1, 1)))
            if norm == "layer":
                layers.append(nn.GroupNorm(1, cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin = cout
        self.features = nn.Sequential(*layers)
        space_out = frame_size // 2 ** len(widths)
        if space_out < 1:
            raise ValueError(f"frame size {frame_size} is too small for {len(widths)} critic layers")
        self.minibatch_std = minibatch_std
        self.feature_dim = (cin + (minibatch_std > 0)) * time_out * space_out**2
        self.dropout = dropout
        self.head = nn.Linear(self.feature_dim, 1)

    def video_parameters(self) -> list[nn.Parameter]:
        """The video critic's own parameters (those of `self.image` excluded)."""
        image = set() if self.image is None else {id(p) for p in self.image.parameters()}
        return [p for p in self.parameters() if id(p) not in image]

    def forward(self, video: torch.Tensor, dropout_mask: torch.Tensor | None = None) -> torch.Tensor:
        """video (B, C, T, H, W) -> scores (B,). `dropout_mask` (B, feature_dim) of 0/1 replaces the
        module's own dropout draw, so a step is a pure function of its inputs (used by training)."""
        x = self.features(video)
        if self.minibatch_std:
            x = minibatch_stddev(x, self.minibatch_std)
        x = x.flatten(1)
        if dropout_mask is not None:
            x = x * dropout_mask / (1 - self.dropout)
        else:
            x = F.dropout(x, self.dropout, self.training)
        return self.head(x).squeeze(1)
