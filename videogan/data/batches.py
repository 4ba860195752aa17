"""Deterministic training batches from a clip array.

Batch k is a function of (seed, k) only, both which clips and which temporal
crop, so a resumed run sees exactly the batches an unbroken run would have.
A video in a batch is float (C, T, H, W) in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


def to_video_batch(clips: np.ndarray) -> torch.Tensor:
    """uint8 (B, T, H, W, C) -> float (B, C, T, H, W) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(clips)).permute(0, 4, 1, 2, 3).float()
    return x.div_(127.5).sub_(1.0)


def to_clips(videos: torch.Tensor) -> np.ndarray:
    """float (B, C, T, H, W) in [-1, 1] -> uint8 (B, T, H, W, C)."""
    x = ((videos.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).cpu().numpy()


class ClipBatches:
    """Batches of `batch_size` clips of `frames` frames, drawn from `clips` (N, T, H, W, C) uint8."""

    def __init__(self, clips: np.ndarray, batch_size: int, frames: int, seed: int = 0):
        if clips.ndim != 5:
            raise ValueError(f"clip array must be (N, T, H, W, C), got shape {clips.shape}")
        if frames > clips.shape[1]:
            raise ValueError(f"model wants {frames} frames but the clips hold {clips.shape[1]}")
        self.clips, self.batch_size, self.frames, self.seed = clips, batch_size, frames, seed

    def indices(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, k])
        items = rng.integers(0, len(self.clips), self.batch_size)
        starts = rng.integers(0, self.clips.shape[1] - self.frames + 1, self.batch_size)
        return items, starts

    def batch(self, k: int) -> torch.Tensor:
        items, starts = self.indices(k)
        clips = np.stack([self.clips[i, s : s + self.frames] for i, s in zip(items, starts)])
        return to_video_batch(clips)

    def stream(self, start: int = 0) -> Iterator[torch.Tensor]:
        k = start
        while True:
            yield self.batch(k)
            k += 1
