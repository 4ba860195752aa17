"""The evaluator network: a frame encoder, a digit classifier on it, and a temporal encoder.

A video (B, C, T, H, W) in [-1, 1] is resized frame by frame to `input_size`
and encoded to a 4x4 conv map. The digit classifier reads the map's spatial
maximum (what is there, wherever it is); the frame feature f_t (frame_dim)
reads that and the whole map (what and where). A 1-D conv over
(f_t, f_t - f_{t-1}) gives the motion feature (motion_dim). Video features are
[mean_t f_t, motion]: appearance and motion, each block scaled to unit
variance on real data so that neither dominates a distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Architecture:
    channels: int
    input_size: int
    width: int
    frame_dim: int
    motion_dim: int
    num_classes: int  # 0 = no classifier (a source without labels)
    digits_per_video: int = 0  # digits in a labelled video (K); modes are sets of up to K classes


class FrameEncoder(nn.Module):
    """(N, C, S, S) -> conv map (N, D, 4, 4): stride-2 conv blocks with BatchNorm."""

    def __init__(self, channels: int, input_size: int, width: int):
        super().__init__()
        layers: list[nn.Module] = []
        cin = channels
        for i in range(int(math.log2(input_size // 4))):
            cout = min(width * 2**i, 4 * width)
            layers += [nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True)]
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.out_channels = cin

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.convs(frames)


class TemporalEncoder(nn.Module):
    """(B, T, frame_dim) -> (B, motion_dim), from the features and their frame-to-frame change."""

    def __init__(self, frame_dim: int, motion_dim: int):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(2 * frame_dim, motion_dim, 3, padding=1), nn.ReLU(),
            nn.Conv1d(motion_dim, motion_dim, 3, padding=1), nn.ReLU(),
        )

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        change = torch.diff(feats, dim=1, prepend=feats[:, :1])
        x = torch.cat([feats, change], dim=2).transpose(1, 2)
        return self.convs(x).mean(dim=2)


class Evaluator(nn.Module):
    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        self.encoder = FrameEncoder(arch.channels, arch.input_size, arch.width)
        depth = self.encoder.out_channels
        # What is in the frame (max over the 4x4 map) and where (the flattened map), to frame_dim.
        self.project = nn.Linear(depth + 16 * depth, arch.frame_dim)
        self.temporal = TemporalEncoder(arch.frame_dim, arch.motion_dim)
        self.order = nn.Linear(arch.motion_dim, 2)  # 0 = frames in order, 1 = shuffled
        self.classifier = nn.Linear(depth, arch.num_classes) if arch.num_classes else None
        # Feature normalisation, set from real data after fitting (see fit.set_normalisation).
        self.register_buffer("frame_mean", torch.zeros(arch.frame_dim))
        self.register_buffer("frame_scale", torch.ones(()))
        self.register_buffer("video_mean", torch.zeros(arch.frame_dim + arch.motion_dim))
        self.register_buffer("video_scale", torch.ones(arch.frame_dim + arch.motion_dim))

    def resize(self, videos: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> frames (B*T, C, S, S) at the evaluator's input size."""
        frames = videos.transpose(1, 2).flatten(0, 1)
        size = self.arch.input_size
        if frames.shape[-1] > size:
            return F.adaptive_avg_pool2d(frames, size)
        if frames.shape[-1] < size:
            return F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)
        return frames

    def forward(self, videos: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw outputs: frame features (B, T, F), motion (B, M), order logits (B, 2), digit logits (B, T, K)."""
        b, t = videos.shape[0], videos.shape[2]
        maps = self.encoder(self.resize(videos))
        what = maps.amax(dim=(2, 3))
        # With labels the conv encoder learns from the digits alone: the order task, solved in a few
        # hundred steps, otherwise starves the classifier. Without labels it learns from the order task.
        shared = maps.detach() if self.classifier is not None else maps
        feats = F.relu(self.project(torch.cat([shared.amax(dim=(2, 3)), shared.flatten(1)], dim=1))).view(b, t, -1)
        motion = self.temporal(feats)
        out = {"frame": feats, "motion": motion, "order": self.order(motion)}
        if self.classifier is not None:
            out["digits"] = self.classifier(what).view(b, t, -1)
        return out

    @torch.no_grad()
    def raw_video(self, videos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unnormalised frame features (B, T, F) and video features (B, F + M)."""
        out = self(videos)
        return out["frame"], torch.cat([out["frame"].mean(dim=1), out["motion"]], dim=1)

    @torch.no_grad()
    def features(self, videos: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised frame features (B, T, F), video features (B, F + M), digit probabilities (B, T, K)."""
        out = self(videos)
        frame = (out["frame"] - self.frame_mean) / self.frame_scale
        video = torch.cat([out["frame"].mean(dim=1), out["motion"]], dim=1)
        result = {"frame": frame, "video": (video - self.video_mean) / self.video_scale}
        if "digits" in out:
            result["probs"] = torch.sigmoid(out["digits"])
        return result
