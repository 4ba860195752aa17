"""Measures read straight from the pixels of uint8 clips (N, T, H, W, C), no network involved.

- Per-transition motion: mean |x_{t+1} - x_t| for each pair of consecutive frames, so a generator
  whose first frame is noise or whose last frames stand still shows it frame by frame.
- Ms Pacman's maze: each pixel takes the nearest colour of the real clips' palette (their most
  frequent colours: the background first, the walls second); a frame's walls are its wall-coloured
  pixels, compared with the real frames' by intersection over union. A video's window stands still,
  so a few frames per video say it all: candidates are scored on 5 frames of each video (the first
  included), against 2 frames of each real video.
- Ms Pacman's sprites: connected regions of pixels that change between consecutive frames, at
  least SPRITE_PIXELS and at most a quarter of the frame (a region that large is not a sprite).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

PALETTE_SIZE = 8  # real colours pixels are snapped to: background, walls, Pacman, ghosts, ...
CHANGED = 48  # a pixel changed between frames when a channel moved by more than this (0-255)
SPRITE_PIXELS = 4  # changed regions smaller than this are not a moving sprite
_EIGHT_NEIGHBOURS = np.ones((3, 3), bool)


def motion_by_transition(clips: np.ndarray) -> np.ndarray:
    """(T - 1,) mean absolute change (0-255) between frame t and t + 1, over videos and pixels."""
    out = np.zeros(clips.shape[1] - 1)
    for start in range(0, len(clips), 256):
        chunk = np.asarray(clips[start : start + 256], np.float32)
        out += np.abs(np.diff(chunk, axis=1)).sum(axis=(0, 2, 3, 4))
    return out / (len(clips) * np.prod(clips.shape[2:]))


def palette(clips: np.ndarray, size: int = PALETTE_SIZE) -> np.ndarray:
    """(k, C) uint8: the clips' most frequent colours, most frequent first."""
    pixels = np.asarray(clips[:, :: max(1, clips.shape[1] // 2)], np.int64).reshape(-1, clips.shape[-1])
    packed = (pixels << (8 * np.arange(pixels.shape[1]))).sum(axis=1)  # one integer per colour
    codes, counts = np.unique(packed, return_counts=True)
    top = codes[np.argsort(-counts, kind="stable")[:size]]
    return ((top[:, None] >> (8 * np.arange(pixels.shape[1]))) & 255).astype(np.uint8)


def wall_masks(clips: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """bool (N * T, H * W): pixels whose nearest palette colour is the walls' (the second)."""
    pixels = np.asarray(clips, np.float32).reshape(-1, clips.shape[-1])
    centres = colours.astype(np.float32)
    # |p - c|^2 = |p|^2 - 2 p.c + |c|^2, and |p|^2 is the same for every c
    nearest = (centres**2).sum(1)[None] - 2 * pixels @ centres.T
    nearest = nearest.argmin(1)
    return (nearest == 1).reshape(clips.shape[0] * clips.shape[1], -1)


def best_wall_iou(fake: np.ndarray, real: np.ndarray) -> np.ndarray:
    """(N * 5,) for each scored candidate frame, the intersection over union of its walls with the real
    frame whose walls match best (two frames without walls match fully)."""
    colours = palette(real)
    bank = wall_masks(real[:, :: max(1, real.shape[1] // 2)], colours).astype(np.float32)
    ours = wall_masks(fake[:, :: max(1, fake.shape[1] // 5)], colours).astype(np.float32)
    best = np.zeros(len(ours))
    for start in range(0, len(ours), 2048):
        chunk = ours[start : start + 2048]
        inter = chunk @ bank.T
        union = chunk.sum(1, keepdims=True) + bank.sum(1)[None] - inter
        best[start : start + len(chunk)] = np.where(union > 0, inter / np.maximum(union, 1), 1.0).max(1)
    return best


def moving_sprites(clips: np.ndarray) -> np.ndarray:
    """(N, T - 1) sprite-sized regions of changed pixels (8-connected) per frame transition."""
    n, t = clips.shape[:2]
    largest = clips.shape[2] * clips.shape[3] // 4
    out = np.zeros((n, t - 1), np.int64)
    for i in range(n):
        video = np.asarray(clips[i], np.int16)
        changed = np.asarray((np.abs(np.diff(video, axis=0)) > CHANGED).any(axis=-1))  # (T - 1, H, W)
        for j, mask in enumerate(changed):
            labels, count = ndimage.label(mask, structure=_EIGHT_NEIGHBOURS)
            if count:
                sizes = np.bincount(labels.ravel())[1:]
                out[i, j] = int(((sizes >= SPRITE_PIXELS) & (sizes <= largest)).sum())
    return out
