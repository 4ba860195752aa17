"""Differentiable augmentation of critic inputs, one draw per clip for all its frames (DiffAugment, Zhao et al.
2020, as StyleGAN-V uses it for video): translation, cutout and colour, applied to real and generated videos
alike, and to the generator's videos in its own step, so the critic cannot tell the augmentation from the data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from videogan.config import AugmentConfig

COLUMNS = 6  # uniform draws per clip: brightness, contrast, shift y, shift x, cutout y, cutout x
BACKGROUND = -1.0  # what shifts bring in and cutout leaves: the dark background of both datasets


def augment(video: torch.Tensor, u: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """video (B, C, T, H, W) in [-1, 1]; u (B, COLUMNS) uniform in [0, 1): the clip's own draws."""
    if cfg.colour:
        b = u[:, 0].to(video.dtype).view(-1, 1, 1, 1, 1)
        c = u[:, 1].to(video.dtype).view(-1, 1, 1, 1, 1)
        mean = video.mean(dim=(1, 2, 3, 4), keepdim=True)
        video = (video - mean) * (c + 0.5) + mean + (b - 0.5)  # contrast x[0.5, 1.5), brightness +[-0.5, 0.5)
    if cfg.translation > 0:
        video = _translate(video, u[:, 2], u[:, 3], cfg.translation)
    if cfg.cutout > 0:
        video = _cutout(video, u[:, 4], u[:, 5], cfg.cutout)
    return video


def _translate(video: torch.Tensor, uy: torch.Tensor, ux: torch.Tensor, share: float) -> torch.Tensor:
    b, _, _, h, w = video.shape
    shift = lambda u, size: ((u * 2 - 1) * share * size).round().long()  # noqa: E731
    rows = (torch.arange(h, device=video.device)[None] + shift(uy, h)[:, None] + 1).clamp(0, h + 1)  # (B, H)
    cols = (torch.arange(w, device=video.device)[None] + shift(ux, w)[:, None] + 1).clamp(0, w + 1)  # (B, W)
    padded = F.pad(video, [1, 1, 1, 1], value=BACKGROUND).permute(0, 3, 4, 1, 2)  # (B, H+2, W+2, C, T)
    batch = torch.arange(b, device=video.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 4, 1, 2)


def _cutout(video: torch.Tensor, uy: torch.Tensor, ux: torch.Tensor, share: float) -> torch.Tensor:
    _, _, _, h, w = video.shape
    side_y, side_x = max(1, round(share * h)), max(1, round(share * w))
    y0 = (uy * (h + 1 - side_y)).long()[:, None]
    x0 = (ux * (w + 1 - side_x)).long()[:, None]
    ys, xs = torch.arange(h, device=video.device)[None], torch.arange(w, device=video.device)[None]
    inside = ((ys >= y0) & (ys < y0 + side_y))[:, :, None] & ((xs >= x0) & (xs < x0 + side_x))[:, None, :]
    return torch.where(inside[:, None, None], torch.full_like(video, BACKGROUND), video)
