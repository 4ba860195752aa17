"""Fréchet Video Distance (Unterthiner et al. 2018) with the Kinetics-400 I3D, as the papers compute it.

Protocol: the first `frames` frames (16 in the papers), resized to 224x224
(bilinear, half-pixel centres), grey replicated to RGB, values in [-1, 1]; the
400 logits as features; the Fréchet distance of the two feature sets. The
number depends on how many videos each set has, so it is reported with them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from videogan.errors import ConfigError
from videogan.metrics.config import FvdConfig
from videogan.metrics.distances import frechet_distance
from videogan.metrics.i3d import INPUT_SIZE, MIN_FRAMES, InceptionI3d, load_i3d


def i3d_input(clips: np.ndarray, frames: int) -> torch.Tensor:
    """uint8 (N, T, H, W, C) -> float (N, 3, min(T, frames), 224, 224) in [-1, 1]."""
    video = torch.from_numpy(np.array(clips[:, :frames])).float()  # a copy: clips may be a read-only memmap
    n, t, h, w, c = video.shape
    video = video.permute(0, 1, 4, 2, 3).reshape(n * t, c, h, w)
    video = F.interpolate(video, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    video = video.reshape(n, t, c, INPUT_SIZE, INPUT_SIZE).permute(0, 2, 1, 3, 4)
    if c == 1:
        video = video.expand(-1, 3, -1, -1, -1)
    return video / 127.5 - 1.0


@torch.inference_mode()
def i3d_logits(
    model: InceptionI3d,
    clips: np.ndarray,
    frames: int,
    batch_size: int,
    device: str | torch.device = "cpu",
    desc: str | None = None,
) -> np.ndarray:
    """(N, 400) Kinetics logits of uint8 clips (N, T, H, W, C)."""
    out = []
    for start in tqdm(range(0, len(clips), batch_size), desc=desc, disable=desc is None, unit="batch", leave=False):
        out.append(model(i3d_input(clips[start : start + batch_size], frames).to(device)).float().cpu().numpy())
    return np.concatenate(out)


def fvd_frames(clip_frames: int, cfg: FvdConfig) -> int | None:
    """Frames I3D sees per video: the first cfg.frames, or all of shorter videos; None where FVD is off or,
    under enabled=auto, the videos are too short for I3D (with a note)."""
    if cfg.enabled is False:
        return None
    if clip_frames < MIN_FRAMES:
        if cfg.enabled is True:
            raise ConfigError(
                f"evaluate.fvd.enabled is true but the I3D network needs videos of at least "
                f"{MIN_FRAMES} frames and these have {clip_frames}; set it to auto or false"
            )
        print(
            f"note: no FVD: the I3D network needs videos of at least {MIN_FRAMES} frames and these have "
            f"{clip_frames} (evaluate.fvd.enabled: auto)",
            file=sys.stderr,
        )
        return None
    return min(clip_frames, cfg.frames)


@dataclass
class FvdScorer:
    """I3D features of the two real halves, computed once; FVD of any candidate set against half A."""

    model: InceptionI3d
    real_a: np.ndarray
    reference: float  # FVD of real half B against real half A
    videos: int
    frames: int
    cfg: FvdConfig
    device: str
    progress: bool

    @classmethod
    def build(
        cls, real_a: np.ndarray, real_b: np.ndarray, cfg: FvdConfig, device: str = "cpu", progress: bool = False
    ) -> FvdScorer | None:
        """None where FVD is off or cannot run (fvd_frames)."""
        frames = fvd_frames(real_a.shape[1], cfg)
        if frames is None:
            return None
        videos = min(cfg.videos or len(real_a), len(real_a))  # never more than evaluate.num_samples
        model = load_i3d(device=device)

        def logits(clips: np.ndarray, name: str) -> np.ndarray:
            return i3d_logits(
                model, clips[:videos], frames, cfg.batch_size, device, f"I3D: {name}" if progress else None
            )

        a = logits(real_a, "real A")
        return cls(model, a, frechet_distance(logits(real_b, "real B"), a), videos, frames, cfg, device, progress)

    def logits(self, clips: np.ndarray, name: str) -> np.ndarray:
        return i3d_logits(
            self.model, clips, self.frames, self.cfg.batch_size, self.device, f"I3D: {name}" if self.progress else None
        )

    def fvd(self, clips: np.ndarray, name: str = "candidate") -> float:
        return frechet_distance(self.logits(clips[: self.videos], name), self.real_a)

    def score(self, fake: np.ndarray, init: np.ndarray | None = None) -> dict[str, float]:
        """{fvd, fvd_ref, [fvd_init], fvd_videos, fvd_frames}."""
        out = {"fvd": self.fvd(fake), "fvd_ref": self.reference}
        if init is not None:
            out["fvd_init"] = self.fvd(init, "step 0")
        return {**out, "fvd_videos": self.videos, "fvd_frames": self.frames}
