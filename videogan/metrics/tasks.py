"""What the evaluator learns from: per-frame digit targets and training batches.

Two tasks, both built from uint8 clips (N, T, H, W, C) with a numpy Generator,
so a batch is a function of the seed alone:
- order: half of each batch has its frames shuffled; the network says which
  (needs motion to solve, needs no labels);
- digits (labelled sources only): which digit classes are visible in a
  frame, and in which cell of the digit reader's 4x4 grid each digit's centre
  lies, plus digit-free frames (noise, smooth blobs, blank, dust) and broken
  digits (fragments and strokes cut from real frames) whose target is "no
  digit", so that the reader learns to reject what is not a whole digit.
  Overlapping digits each count: two classes centred in one cell are both
  targets there.
"""

from __future__ import annotations

import numpy as np
import torch

from videogan.data.batches import to_video_batch

NUM_CLASSES = 10
GRID = 4  # the digit reader's conv map is GRID x GRID cells


def digit_size(frame_size: int, canvas: int = 64) -> float:
    """Side of a 28x28 MNIST digit in stored pixels, for a source canvas resized to frame_size."""
    return 28 * frame_size / canvas


def frame_targets(labels: dict, index: np.ndarray, frames: int, frame_size: int, digit: float) -> np.ndarray:
    """(len(index), frames, 10) float: 1 where a digit class is at least half inside the frame.

    `positions` (N, T, K, 2) are each digit's top-left (row, col) in stored pixels; `digit` its side.
    """
    digits = np.asarray(labels["digits"])[index]  # (B, K)
    visible = visible_digits(labels, index, frames, frame_size, digit)  # (B, T, K)
    targets = np.zeros((len(index), frames, NUM_CLASSES), np.float32)
    b, t, k = np.nonzero(visible)
    targets[b, t, digits[b, k]] = 1.0
    return targets


def visible_digits(labels: dict, index: np.ndarray, frames: int, frame_size: int, digit: float) -> np.ndarray:
    """bool (len(index), frames, K): the digit is at least half inside the frame."""
    digits = np.asarray(labels["digits"])[index]
    if "positions" not in labels:
        return np.ones((len(index), frames, digits.shape[1]), bool)
    pos = np.asarray(labels["positions"])[index][:, :frames]
    inside = np.clip(np.minimum(pos + digit, frame_size) - np.maximum(pos, 0), 0, digit)
    return inside.prod(axis=-1) >= digit**2 / 2


def covered(labels: dict, index: np.ndarray, frames: int, digit: float) -> np.ndarray:
    """float (len(index), frames, K): the largest share of each digit's box that another digit's box covers."""
    if "positions" not in labels:
        return np.zeros((len(index), frames, np.asarray(labels["digits"]).shape[1]))
    pos = np.asarray(labels["positions"])[index][:, :frames]  # (B, T, K, 2)
    gap = np.abs(pos[:, :, :, None] - pos[:, :, None, :])  # (B, T, K, K, 2)
    share = np.clip(digit - gap, 0, None).prod(axis=-1) / digit**2
    k = pos.shape[2]
    share[:, :, np.arange(k), np.arange(k)] = 0.0
    return share.max(axis=3)


def cell_targets(
    labels: dict, items: np.ndarray, times: np.ndarray, frame_size: int, digit: float
) -> tuple[np.ndarray, np.ndarray]:
    """For single frames (item, time): (targets, weights), each (n, 10, GRID, GRID) float.

    A visible digit's class is 1 in the cell holding its centre. The cells around it, which see
    part of the digit, are left out of the loss for that class (weight 0); everything else is 0.
    """
    n = len(items)
    targets = np.zeros((n, NUM_CLASSES, GRID, GRID), np.float32)
    weights = np.ones_like(targets)
    if "positions" not in labels:
        return targets, np.zeros_like(targets)
    digits = np.asarray(labels["digits"])[items]  # (n, K)
    pos = np.asarray(labels["positions"])[items, times]  # (n, K, 2) top-left (row, col)
    visible = visible_digits(labels, items, int(np.max(times)) + 1, frame_size, digit)[np.arange(n), times]
    cell = np.clip(((pos + digit / 2) * GRID / frame_size).astype(int), 0, GRID - 1)
    for i, k in zip(*np.nonzero(visible)):
        (r, c), cls = cell[i, k], digits[i, k]
        weights[i, cls, max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2] = 0.0
    for i, k in zip(*np.nonzero(visible)):
        (r, c), cls = cell[i, k], digits[i, k]
        targets[i, cls, r, c] = weights[i, cls, r, c] = 1.0
    return targets, weights


def crop(clips: np.ndarray, index: np.ndarray, length: int, rng: np.random.Generator):
    """Random temporal crops: (clips (B, L, H, W, C), start frame per clip)."""
    starts = rng.integers(0, clips.shape[1] - length + 1, len(index))
    return np.stack([clips[i, s : s + length] for i, s in zip(index, starts)]), starts


def shuffle_half(clips: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle the frames of a random half of the clips: (clips, permutation per clip, order label 0/1)."""
    b, length = clips.shape[:2]
    shuffled: np.ndarray = rng.random(b) < 0.5  # type: ignore[assignment]  # an array; the stub says bool
    perms = np.tile(np.arange(length), (b, 1))
    for i in np.nonzero(shuffled)[0]:
        while np.array_equal(perms[i], np.arange(length)):
            perms[i] = rng.permutation(length)
    return clips[np.arange(b)[:, None], perms], perms, shuffled.astype(np.int64)


def digit_free_clips(n: int, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """n uint8 clips (n, T, H, W, C) with no digit in them: pixel noise, smooth blobs, a flat level, or
    sparse bright dust on black (the speckle an early generator makes, which must not pass for digits)."""
    t, h, w, c = shape
    out = np.empty((n, *shape), np.uint8)
    for i in range(n):
        kind = rng.integers(4)
        if kind == 0:
            out[i] = rng.integers(0, 256, shape)
        elif kind == 1:
            coarse = torch.from_numpy(rng.random((t, c, 4, 4), dtype=np.float32))
            fine = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
            out[i] = (fine.clamp(0, 1) * 255).permute(0, 2, 3, 1).to(torch.uint8).numpy()
        elif kind == 2:
            out[i] = rng.integers(0, 256)
        else:
            out[i] = dust(shape, rng)
    return out


def dust(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Isolated bright pixels (1-15% of them) on black, thickest in a random region."""
    t, h, w, c = shape
    density = rng.uniform(0.01, 0.15)
    cy, cx, spread = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w, rng.uniform(0.1, 0.5) * h
    yy, xx = np.mgrid[:h, :w]
    near = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * spread**2))[None, :, :, None]
    lit = rng.random(shape) < density * near / near.mean()
    return np.where(lit, rng.integers(128, 256, shape), 0).astype(np.uint8)


def broken_digits(frames: np.ndarray, rng: np.random.Generator, kind: str | None = None) -> np.ndarray:
    """Real frames (n, 1, H, W, C) made into what a half-trained generator draws, with every digit broken:
    `fragments` (the frame cut into a 4x4 grid of tiles, shuffled and each turned by a random multiple of 90
    degrees: pieces of strokes in the wrong places) or `strokes` (only a band a tenth to a fifth of the frame
    wide, at a random angle, kept: partial strokes);
    each frame one of the two at random unless `kind` names one."""
    out = frames.copy()
    n, _, h, w, _ = frames.shape
    ys, xs = np.mgrid[:h, :w]
    for i in range(n):
        fragments = rng.random() < 0.5 if kind is None else kind == "fragments"
        if fragments:
            th, tw = h // 4, w // 4
            tiles = out[i, 0, : 4 * th, : 4 * tw].reshape(4, th, 4, tw, -1).swapaxes(1, 2).reshape(16, th, tw, -1)
            tiles = np.stack([np.rot90(tile, rng.integers(4)) for tile in tiles[rng.permutation(16)]])  # type: ignore[call-overload]
            tiles = tiles.reshape(4, 4, th, tw, -1).swapaxes(1, 2)
            out[i, 0, : 4 * th, : 4 * tw] = tiles.reshape(4 * th, 4 * tw, -1)
        else:
            angle, width = rng.uniform(0, np.pi), rng.uniform(0.1, 0.2) * h
            centre = rng.uniform(0.3, 0.7, 2) * (h, w)
            distance = np.abs((ys - centre[0]) * np.cos(angle) - (xs - centre[1]) * np.sin(angle))
            out[i, 0][distance > width / 2] = 0
    return out


def order_batch(clips: np.ndarray, index: np.ndarray, length: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Crops of the clips `index`, half of them shuffled: videos (B, C, L, H, W), order labels (B,)."""
    video, _ = crop(clips, index, length, rng)
    video, _, order = shuffle_half(video, rng)
    return {"video": to_video_batch(video), "order": torch.from_numpy(order)}


def digit_batch(
    clips: np.ndarray, labels: dict, index: np.ndarray, n: int, negatives: float, digit: float, rng: np.random.Generator
) -> dict[str, torch.Tensor]:
    """n single frames from random clips of `index` (a share replaced by digit-free frames).

    One frame per clip: consecutive frames of a clip are near copies, so this sees n digit pairs
    where a batch of clips would see a few. Videos (n, C, 1, H, W), targets (n, 1, 10), and per cell
    (n, 1, 10, GRID, GRID) with their loss weights.
    """
    items = np.sort(rng.choice(index, n))
    times = rng.integers(0, clips.shape[1], n)
    frames = np.stack([clips[i, t : t + 1] for i, t in zip(items, times)])
    targets = frame_targets(labels, items, clips.shape[1], clips.shape[2], digit)[np.arange(n), times][:, None]
    cells, weights = cell_targets(labels, items, times, clips.shape[2], digit)
    n_neg = int(round(negatives * n))
    if n_neg:
        n_broken = n_neg // 2
        frames[n - n_neg : n - n_broken] = digit_free_clips(n_neg - n_broken, frames.shape[1:], rng)
        if n_broken:
            frames[n - n_broken :] = broken_digits(frames[n - n_broken :], rng)
        targets[-n_neg:], cells[-n_neg:], weights[-n_neg:] = 0.0, 0.0, 1.0
    as_tensor = lambda x: torch.from_numpy(np.ascontiguousarray(x))  # noqa: E731
    return {
        "video": to_video_batch(frames),
        "digits": as_tensor(targets),
        "digit_cells": as_tensor(cells[:, None]),
        "cell_weights": as_tensor(weights[:, None]),
    }
