"""Turn the selected source into the clip store: every source passes through the same transform
(first `data.frames` frames, area resize to `data.frame_size`, `data.channels`) and `write_store`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from videogan.data import moving_mnist, pacman_emulator, pacman_folder
from videogan.data.config import DataConfig, download_name
from videogan.data.errors import SourceError
from videogan.data.squares import bouncing_squares
from videogan.data.store import SPLITS, write_store
from videogan.data.video import store_transform


def build(data: DataConfig, raw_dir: str | Path, progress: bool = True):
    """({split: clips}, {split: labels} or None, info) for `data.dataset`, already transformed."""
    transform = store_transform(data.frame_size, data.channels, data.frames)
    if data.dataset == "moving_mnist_generated":
        return moving_mnist.generate(
            data.moving_mnist_generated, data.frames, data.seed, transform, data.frame_size, progress
        )
    if data.dataset == "moving_mnist":
        return _published_mnist(data, Path(raw_dir), transform), None, {"url": data.moving_mnist.url}
    if data.dataset == "pacman_emulator":
        splits, info = pacman_emulator.generate(data.pacman_emulator, data.frames, data.seed, transform, progress)
        return splits, None, info
    if data.dataset == "pacman_folder":
        splits, info = pacman_folder.load(data.pacman_folder, raw_dir, data.frames, data.seed, transform, progress)
        return splits, None, info
    return _squares(data, transform), None, {}


def _published_mnist(data: DataConfig, raw: Path, transform) -> dict[str, np.ndarray]:
    path = raw / download_name(data.moving_mnist.url)
    if not path.exists():
        raise SourceError(
            f"{path} is missing: run `videogan download` first (or put the file there by hand), "
            "or use data.dataset=moving_mnist_generated, which needs no download"
        )
    if data.frames > 20:
        raise SourceError(f"the published Moving MNIST has 20 frames per sequence; data.frames is {data.frames}")
    return moving_mnist.load_published(path, data.moving_mnist, transform)


def _squares(data: DataConfig, transform) -> dict[str, np.ndarray]:
    cfg = data.bouncing_squares
    sizes = {"train": cfg.num_videos, "val": max(8, cfg.num_videos // 8), "test": max(8, cfg.num_videos // 8)}
    return {
        split: transform(
            bouncing_squares(
                sizes[split], data.frames, data.frame_size, data.channels, cfg.square_size, seed=data.seed * 3 + i
            )
        )
        for i, split in enumerate(SPLITS)
    }


def prepare(config, raw_dir: str | Path, out_dir: str | Path, progress: bool = True) -> dict:
    """Build the store for `config.data` (a Config or a DataConfig) in `out_dir`; returns its meta."""
    data: DataConfig = getattr(config, "data", config)
    splits, labels, info = build(data, raw_dir, progress)
    meta = {
        "source": data.dataset,
        "frame_size": data.frame_size,
        "frames": data.frames,
        "channels": data.channels,
        "seed": data.seed,
        "source_info": info,
        "data_config": data.model_dump(mode="json"),
    }
    return write_store(out_dir, splits, labels, meta)
