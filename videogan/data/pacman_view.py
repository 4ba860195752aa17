"""Windows that follow Pacman, so that the sprites are large enough to see and move in every clip.

Shrinking the whole 172x160 playfield to 32x32 leaves sprites a pixel or two wide. A window of the
full-resolution screen keeps them at their size: each clip gets one fixed window (the maze stands
still in it), centred on Pacman's mean position over the clip's frames and kept inside the screen.
Pacman is found by his colour, which the game draws in every frame.
"""

from __future__ import annotations

import numpy as np

PACMAN_RGB = (210, 164, 74)


def pacman_pixels(clips: np.ndarray) -> np.ndarray:
    """bool (..., H, W): where the RGB frames show Pacman's colour."""
    return np.all(clips == np.asarray(PACMAN_RGB, np.uint8), axis=-1)


def follow_pacman(clips: np.ndarray, window: int) -> np.ndarray:
    """uint8 (N, T, h, w, 3) -> (M, T, window, window, 3): each clip's window around Pacman.
    Clips in which Pacman never shows are dropped (M <= N)."""
    n, t, h, w, _ = clips.shape
    if window > min(h, w):
        raise ValueError(f"window {window} is larger than the {h}x{w} crop")
    out = []
    for clip in clips:
        _, rows, cols = np.nonzero(pacman_pixels(clip))
        if len(rows) == 0:
            continue
        top = int(np.clip(round(rows.mean() - window / 2), 0, h - window))
        left = int(np.clip(round(cols.mean() - window / 2), 0, w - window))
        out.append(clip[:, top : top + window, left : left + window])
    return np.stack(out) if out else np.zeros((0, t, window, window, 3), np.uint8)
