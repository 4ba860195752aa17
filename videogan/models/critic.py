"""Critic: the 3D-convolutional discriminator of Vondrick et al. (VGAN), no normalisation by default.

Four Conv3d (kernel 4, stride 2, padding 1, LeakyReLU 0.2) take a (B, C, T, H, W)
video to (B, 512, T', H/16, W/16); once time has shrunk to one step it is no
longer strided, so any T >= 8 fits. Dropout, then a linear head gives one score
(the WGAN critic value, or the logit for the basic and alternative losses).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _time_after(frames: int, layers: int) -> tuple[list[tuple[int, int, int]], int]:
    """Per layer (kernel, stride, padding) along time, and the time length at the end."""
    specs = []
    for _ in range(layers):
        spec = (4, 2, 1) if frames >= 2 else (1, 1, 0)
        specs.append(spec)
        k, s, p = spec
        frames = (frames + 2 * p - k) // s + 1
    return specs, frames


class Critic(nn.Module):
    def __init__(self, frames: int, frame_size: int, channels: int,
                 widths: tuple[int, ...] = (64, 128, 256, 512), norm: str = "none", dropout: float = 0.2):
        super().__init__()
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
        self.feature_dim = cin * time_out * space_out**2
        self.dropout = dropout
        self.head = nn.Linear(self.feature_dim, 1)

    def forward(self, video: torch.Tensor, dropout_mask: torch.Tensor | None = None) -> torch.Tensor:
        """video (B, C, T, H, W) -> scores (B,). `dropout_mask` (B, feature_dim) of 0/1 replaces the
        module's own dropout draw, so a step is a pure function of its inputs (used by training)."""
        x = self.features(video).flatten(1)
        if dropout_mask is not None:
            x = x * dropout_mask / (1 - self.dropout)
        else:
            x = F.dropout(x, self.dropout, self.training)
        return self.head(x).squeeze(1)
