"""Array operations shared by the sources: area resize, channel conversion, clip cutting, motion.

Clips are uint8 (N, T, H, W, C) throughout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's "L" mode


@lru_cache(maxsize=32)
def _area_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """(size_out, size_in) weights: output pixel i averages input [i*s, (i+1)*s) by overlap, s = in/out."""
    scale = size_in / size_out
    edges_out = np.arange(size_out + 1) * scale
    lo, hi = edges_out[:-1, None], edges_out[1:, None]
    pix = np.arange(size_in)[None, :]
    overlap = np.clip(np.minimum(hi, pix + 1) - np.maximum(lo, pix), 0, None)
    return torch.from_numpy(overlap / scale).float()


def resize_area(clips: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area interpolation (each output pixel is the mean of the input area it covers), any scale factor."""
    n, t, h, w, c = clips.shape
    if (h, w) == (height, width):
        return clips
    x = torch.from_numpy(np.ascontiguousarray(clips)).float().permute(0, 1, 4, 2, 3)  # N T C H W
    x = _area_matrix(h, height) @ x @ _area_matrix(w, width).T
    x = x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 1, 3, 4, 2)
    return x.numpy()


def to_channels(clips: np.ndarray, channels: int) -> np.ndarray:
    """Grey <-> RGB: RGB to grey by BT.601 luma, grey to RGB by repetition."""
    have = clips.shape[-1]
    if have == channels:
        return clips
    if have == 1 and channels == 3:
        return np.repeat(clips, 3, axis=-1)
    if have == 3 and channels == 1:
        grey = clips.astype(np.float32) @ np.asarray(LUMA, np.float32)
        return np.rint(grey).clip(0, 255).astype(np.uint8)[..., None]
    raise ValueError(f"cannot convert {have} channels to {channels}")


@dataclass(frozen=True)
class StoreTransform:
    """The one transform every source applies before storing: first `frames` frames, resize, channels.
    A plain object rather than a closure, so that worker processes can receive it."""

    frame_size: int
    channels: int
    frames: int

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        if clips.shape[1] < self.frames:
            raise ValueError(f"clips hold {clips.shape[1]} frames but data.frames is {self.frames}")
        clips = clips[:, : self.frames]
        if clips.shape[-1] == 3 and self.channels == 1:  # fewer values to resize
            return resize_area(to_channels(clips, 1), self.frame_size, self.frame_size)
        return to_channels(resize_area(clips, self.frame_size, self.frame_size), self.channels)


def store_transform(frame_size: int, channels: int, frames: int) -> Callable[[np.ndarray], np.ndarray]:
    return StoreTransform(frame_size, channels, frames)


def in_chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def cut_clips(frames: np.ndarray, length: int) -> np.ndarray:
    """(L, H, W, C) -> (L // length, length, H, W, C), non-overlapping, the tail dropped."""
    n = len(frames) // length
    return frames[: n * length].reshape(n, length, *frames.shape[1:])


def motion(clips: np.ndarray) -> np.ndarray:
    """Per clip: mean squared change between consecutive frames, pixels scaled to [-1, 1]."""
    x = clips.astype(np.float32) / 127.5
    return np.square(np.diff(x, axis=1)).mean(axis=(1, 2, 3, 4))
