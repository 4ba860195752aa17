"""Load a generator from any checkpoint and draw videos from it, reproducibly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from videogan.config import Config, config_from_dict
from videogan.data.batches import to_clips
from videogan.models import VideoGenerator, build_generator
from videogan.training import checkpoint


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> tuple[VideoGenerator, Config, int]:
    """(generator in eval mode, its config, its training step) from a full checkpoint or a snapshot."""
    state = checkpoint.load(path)
    # Only what the weights depend on: other sections may have been written by another version.
    saved = {k: state["config"][k] for k in ("data", "model") if k in state["config"]}
    config = config_from_dict(saved, f"{path} (saved config)")
    generator = build_generator(config)
    generator.load_state_dict(state.get("generator_ema", state["generator"]))  # the average, when trained with one
    return generator.to(device).eval(), config, int(state["step"])


def fixed_noise(generator: VideoGenerator, n: int, seed: int) -> torch.Tensor:
    return generator.sample_noise(n, torch.Generator().manual_seed(seed))


@torch.no_grad()
def render_noise(generator: VideoGenerator, noise: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Videos (n, C, T, H, W) in [-1, 1] for the given noise rows, `batch_size` at a time, on the CPU."""
    device = next(generator.parameters()).device
    return torch.cat([generator(noise[i : i + batch_size].to(device)).cpu() for i in range(0, len(noise), batch_size)])


def sample_videos(generator: VideoGenerator, n: int, seed: int = 0, batch_size: int = 64) -> torch.Tensor:
    """n videos (n, C, T, H, W) in [-1, 1]; the same seed gives the same videos."""
    return render_noise(generator, fixed_noise(generator, n, seed), batch_size)


def sample_clips(generator: VideoGenerator, n: int, seed: int = 0, batch_size: int = 64) -> np.ndarray:
    """Like sample_videos, as the clip-store layout: uint8 (n, T, H, W, C)."""
    return to_clips(sample_videos(generator, n, seed, batch_size))
