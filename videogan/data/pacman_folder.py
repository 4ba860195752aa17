"""The published Ms Pacman dataset's layout: `Ms_Pacman/{Train,Test}/<episode>/<frame>.png` (210x160 RGB).

Frames are read in natural order (2.png before 10.png), cropped, cut into non-overlapping clips,
optionally windowed around Pacman and filtered for motion like the emulator's. Test episodes make the test
split; the Train episodes are divided into train and validation by a seeded shuffle, so no episode is in two
splits.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from videogan.data.config import PACMAN_DRIVE_URL, PacmanFolder
from videogan.data.errors import SourceError
from videogan.data.pacman_view import follow_pacman
from videogan.data.video import cut_clips, motion

Transform = Callable[[np.ndarray], np.ndarray]


class FolderError(SourceError):
    """A folder that is not laid out as Ms_Pacman/{Train,Test}/<episode>/<frame>.png."""


def find_root(cfg: PacmanFolder, raw_dir: str | Path) -> Path:
    """The Ms_Pacman folder: `cfg.path` (or raw_dir/pacman_folder) itself, or a folder inside it."""
    base = Path(cfg.path) if cfg.path is not None else Path(raw_dir) / "pacman_folder"
    for root in (base, base / "Ms_Pacman", *sorted(base.glob("*/Ms_Pacman"))):
        if (root / "Train").is_dir() and (root / "Test").is_dir():
            return root
    how = (
        "set data.pacman_folder.path to the unpacked folder"
        if cfg.path is not None
        else "set data.pacman_folder.path to an unpacked copy, or data.pacman_folder.url (+ md5) and run "
        "`videogan download`"
    )
    raise FolderError(
        f"no Ms_Pacman/{{Train,Test}}/<episode>/<frame>.png under {base}: {how}. The original is at {PACMAN_DRIVE_URL}"
    )


def _natural(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.stem)]


def episodes(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir()), key=_natural)


def read_episode(folder: Path, crop: tuple[int, int, int, int]) -> np.ndarray:
    """uint8 (L, h, w, 3): the episode's frames in order, cropped."""
    top, bottom, left, right = crop
    files = sorted(folder.glob("*.png"), key=_natural)
    frames = []
    for f in files:
        with Image.open(f) as im:
            frame = np.asarray(im.convert("RGB"))
        if frame.shape[:2] != (210, 160):
            raise FolderError(f"{f}: frames must be 210x160 (the Atari screen), got {frame.shape[1]}x{frame.shape[0]}")
        frames.append(frame[top:bottom, left:right])
    return np.stack(frames) if frames else np.zeros((0, bottom - top, right - left, 3), np.uint8)


def split_episodes(root: Path, val_fraction: float, seed: int) -> dict[str, list[Path]]:
    train = episodes(root / "Train")
    order = np.random.default_rng([seed, 3]).permutation(len(train))
    n_val = max(1, round(val_fraction * len(train))) if len(train) > 1 else 0
    val = {int(i) for i in order[:n_val]}
    split = {
        "train": [e for i, e in enumerate(train) if i not in val],
        "val": [e for i, e in enumerate(train) if i in val],
        "test": episodes(root / "Test"),
    }
    empty = [name for name, eps in split.items() if not eps]
    if empty:
        raise FolderError(
            f"{root}: no episodes for split(s) {empty}; Train needs at least 2 episode folders and Test at least 1"
        )
    return split


def load(cfg: PacmanFolder, raw_dir: str | Path, frames: int, seed: int, transform: Transform, progress: bool = True):
    """All three splits ({split: clips}, info)."""
    root = find_root(cfg, raw_dir)
    splits, by_split = {}, split_episodes(root, cfg.val_fraction, seed)
    for split, eps in by_split.items():
        kept = []
        for ep in tqdm(eps, desc=f"pacman folder {split}", unit="episode", leave=False, disable=not progress):
            clips = cut_clips(read_episode(ep, cfg.crop), frames)
            if cfg.window is not None and len(clips):
                clips = follow_pacman(clips, cfg.window)
            clips = clips[motion(clips) >= cfg.motion_threshold] if len(clips) else clips
            if len(clips):
                kept.append(transform(clips))
        if not kept:
            raise FolderError(
                f"{root}: split {split} has no episode with {frames} frames that move enough "
                f"(data.frames={frames}, motion_threshold={cfg.motion_threshold})"
            )
        splits[split] = np.concatenate(kept)
    return splits, {
        "episodes": {split: len(eps) for split, eps in by_split.items()},
        "crop": list(cfg.crop),
        "window": cfg.window,
    }
