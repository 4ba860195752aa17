"""Video grids and GIF files."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from videogan.data.batches import to_clips


def video_grid(videos: torch.Tensor | np.ndarray, ncol: int | None = None, pad: int = 1) -> np.ndarray:
    """Videos (B, C, T, H, W) float in [-1, 1], or clips (B, T, H, W, C) uint8 -> frames (T, H', W', C) uint8."""
    clips = to_clips(videos) if isinstance(videos, torch.Tensor) else np.asarray(videos)
    b, t, h, w, c = clips.shape
    ncol = ncol or int(np.ceil(np.sqrt(b)))
    nrow = int(np.ceil(b / ncol))
    grid = np.zeros((t, nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), np.uint8)
    for i in range(b):
        r, q = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        grid[:, y : y + h, x : x + w] = clips[i]
    return grid


def save_gif(frames: np.ndarray, path: str | Path, fps: int = 8) -> Path:
    """Frames (T, H, W, C) uint8 -> an endlessly looping GIF with exactly T frames."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = frames[..., 0] if frames.shape[-1] == 1 else frames
    tmp = path.with_name(f".{path.name}.tmp")
    iio.imwrite(tmp, frames, extension=".gif", duration=1000 / fps, loop=0)
    tmp.replace(path)
    return path
