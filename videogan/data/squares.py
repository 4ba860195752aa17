"""Bouncing squares: a tiny synthetic clip source for smoke runs and tests (no download, no labels)."""

from __future__ import annotations

import numpy as np


def bouncing_squares(
    num_videos: int, frames: int, size: int, channels: int = 1, square: int = 4, seed: int = 0
) -> np.ndarray:
    """uint8 clips (N, T, H, W, C): one bright square per video moving at constant speed, reflecting."""
    rng = np.random.default_rng(seed)
    span = size - square
    pos = rng.uniform(0, span, size=(num_videos, 2))
    angle = rng.uniform(0, 2 * np.pi, size=num_videos)
    speed = max(1.0, size / 16)
    vel = speed * np.stack([np.sin(angle), np.cos(angle)], axis=1)
    colour = rng.uniform(128, 255, size=(num_videos, channels)) if channels > 1 else np.full((num_videos, 1), 255)
    clips = np.zeros((num_videos, frames, size, size, channels), np.uint8)
    idx = np.arange(num_videos)
    for t in range(frames):
        top = np.rint(pos).astype(int)
        for dy in range(square):
            for dx in range(square):
                clips[idx, t, top[:, 0] + dy, top[:, 1] + dx] = colour
        pos = pos + vel
        for axis in range(2):
            low, high = pos[:, axis] < 0, pos[:, axis] > span
            pos[low, axis] *= -1
            pos[high, axis] = 2 * span - pos[high, axis]
            vel[low | high, axis] *= -1
    return clips
