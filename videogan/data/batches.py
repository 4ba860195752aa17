"""Deterministic training batches from a clip array.

Batch k is a function of (seed, k) only, both which clips and which temporal crop, so a resumed run
sees exactly the batches an unbroken run would have, with or without worker processes. A video in a
batch is float (C, T, H, W) in [-1, 1].
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from videogan.data.store import REBUILD, StoreError, open_split, read_meta

# uint8 value -> float in [-1, 1]. A table lookup is one single-threaded pass: torch's own elementwise
# ops are several passes, and slow on small batches when their threads compete for busy cores.
_TO_FLOAT = torch.arange(256, dtype=torch.float32).div_(127.5).sub_(1.0).numpy()


def to_video_batch(clips: np.ndarray) -> torch.Tensor:
    """uint8 (B, T, H, W, C) -> contiguous float (B, C, T, H, W) in [-1, 1] (x / 127.5 - 1)."""
    b, t, h, w, c = clips.shape
    out = np.empty((b, c, t, h, w), np.float32)
    np.take(_TO_FLOAT, np.asarray(clips).transpose(0, 4, 1, 2, 3), out=out)
    return torch.from_numpy(out)


def to_device_videos(clips: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, C) on any device -> float (B, C, T, H, W) in [-1, 1] on that device: the same
    float32 arithmetic as `to_video_batch`'s table, so the same numbers to the bit."""
    return clips.permute(0, 4, 1, 2, 3).float().div_(127.5).sub_(1.0).contiguous()


def prefetch_to(device: torch.device, batches: Iterator[torch.Tensor]) -> Iterator[torch.Tensor]:
    """uint8 batches copied to a CUDA device from pinned memory on a side stream, one batch ahead, so
    the copy overlaps the step that runs before it; each is converted to float there."""
    copy_stream = torch.cuda.Stream(device)

    def send(clips: torch.Tensor) -> torch.Tensor:
        with torch.cuda.stream(copy_stream):
            pinned = clips if clips.is_pinned() else clips.pin_memory()
            return pinned.to(device, non_blocking=True)

    upcoming = send(next(batches))
    while True:
        current = upcoming
        torch.cuda.current_stream(device).wait_stream(copy_stream)
        current.record_stream(torch.cuda.current_stream(device))
        upcoming = send(next(batches))
        yield to_device_videos(current)


def to_clips(videos: torch.Tensor) -> np.ndarray:
    """float (B, C, T, H, W) in [-1, 1] -> uint8 (B, T, H, W, C)."""
    x = ((videos.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).cpu().numpy()


class ClipBatches(Dataset):
    """Batches of `batch_size` clips of `frames` frames, drawn from `clips` (N, T, H, W, C) uint8.

    With `num_workers` > 0, `stream` runs a DataLoader whose workers build batches; a store memory
    map is reopened in each worker rather than copied to it.
    """

    def __init__(self, clips: np.ndarray, batch_size: int, frames: int, seed: int = 0, num_workers: int = 0):
        if clips.ndim != 5:
            raise ValueError(f"clip array must be (N, T, H, W, C), got shape {clips.shape}")
        if frames > clips.shape[1]:
            raise ValueError(f"model wants {frames} frames but the clips hold {clips.shape[1]}")
        self.clips, self.batch_size, self.frames, self.seed = clips, batch_size, frames, seed
        self.num_workers = num_workers

    def indices(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, k])
        items = rng.integers(0, len(self.clips), self.batch_size)
        starts = rng.integers(0, self.clips.shape[1] - self.frames + 1, self.batch_size)
        return items, starts

    def clips_of(self, k: int) -> np.ndarray:
        """Batch k as uint8 clips (B, T, H, W, C)."""
        items, starts = self.indices(k)
        return np.stack([self.clips[i, s : s + self.frames] for i, s in zip(items, starts)])

    def batch(self, k: int) -> torch.Tensor:
        return to_video_batch(self.clips_of(k))

    def uint8_batch(self, k: int) -> torch.Tensor:
        return torch.from_numpy(self.clips_of(k))

    def __getitem__(self, k: int) -> torch.Tensor:  # what a DataLoader worker calls
        return self.batch(k)

    def stream(self, start: int = 0, device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
        """Batches start, start + 1, ... forever, as float videos on `device`. To a CUDA device the
        clips travel as uint8 (a quarter of the bytes) and are converted there (`prefetch_to`)."""
        device = torch.device(device)
        if device.type != "cuda":
            return self._stream(self, start, pin=False)
        return prefetch_to(device, self._stream(_Uint8Batches(self), start, pin=True))

    def _stream(self, dataset: Dataset, start: int, pin: bool) -> Iterator[torch.Tensor]:
        if self.num_workers == 0:
            return map(dataset.__getitem__, itertools.count(start))
        loader = DataLoader(
            dataset,
            batch_size=None,
            sampler=itertools.count(start),
            num_workers=self.num_workers,
            worker_init_fn=_one_thread,
            prefetch_factor=4,
            pin_memory=pin,
        )
        return iter(loader)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        path = _whole_file(self.clips)
        if path is not None:
            state["clips"] = _Reopen(path)
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state["clips"], _Reopen):
            state["clips"] = np.load(state["clips"].path, mmap_mode="r")
        self.__dict__.update(state)


class _Uint8Batches(Dataset):
    """The same batches as uint8 clips, for a DataLoader that feeds a GPU."""

    def __init__(self, batches: ClipBatches):
        self.batches = batches

    def __getitem__(self, k: int) -> torch.Tensor:
        return self.batches.uint8_batch(k)


class _Reopen:
    def __init__(self, path: str):
        self.path = path


def _whole_file(clips: np.ndarray) -> str | None:
    """The .npy path when `clips` is a memory map of a whole file (so a worker can reopen it)."""
    path = getattr(clips, "filename", None)
    if not isinstance(clips, np.memmap) or path is None or not clips.flags.c_contiguous:
        return None
    whole = np.load(path, mmap_mode="r")
    return os.fspath(path) if (whole.shape, whole.dtype) == (clips.shape, clips.dtype) else None


def _one_thread(_worker_id: int) -> None:
    torch.set_num_threads(1)


def open_training_batches(
    config, store_dir: str | Path, batch_size: int, seed: int, num_workers: int = 0
) -> ClipBatches:
    """Training batches over the store's train split, after checking the store fits the config."""
    from videogan.config import ConfigError

    frames, (_, stored_t, h, w, c) = config.frames, read_meta(store_dir)["shapes"]["train"]
    size, channels = config.data.frame_size, config.data.channels
    if (h, w, c) != (size, size, channels):
        raise StoreError(
            f"the clip store at {store_dir} holds {h}x{w} frames with {c} channel(s), but the config "
            f"asks for data.frame_size={size}, data.channels={channels}: {REBUILD}"
        )
    if frames > stored_t:
        raise ConfigError(
            f"the model generates {frames} frames (model.frames, else data.frames) but the clip "
            f"store at {store_dir} holds {stored_t}: set model.frames <= {stored_t}, or {REBUILD}"
        )
    return ClipBatches(open_split(store_dir, "train"), batch_size, frames, seed, num_workers)
