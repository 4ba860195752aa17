"""The evaluator network: a frame encoder, a digit classifier on it, and a temporal encoder.

A video (B, C, T, H, W) in [-1, 1] is resized frame by frame to `input_size`
and encoded to a 4x4 conv map. Its spatial maximum what_t says what is there,
wherever it is (a linear digit classifier reads it, which is what the encoder
learns from on a labelled source); f_t (frame_dim) reads what_t and the whole
map, so it also knows where. The digits a frame shows are read by a separate,
deeper network (`DigitReader`) that names the digits centred in each cell of
its own 4x4 map: a frame shows a digit when some cell sees it, so digits are
found in frames without positions, as generated frames are. A 1-D conv over
(f_t, f_t - f_{t-1}) gives the motion feature (motion_dim). Video features are
[mean_t what_t, mean_t f_t, motion]; frame features [what_t, f_t]. Each block
is scaled to unit variance on real data so that none dominates a distance, then
softly bounded (BOUND tanh(x / BOUND)): inputs unlike anything the evaluator saw
(pixel noise, an untrained generator) cannot give features of any size, so
distances keep a scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BOUND = 5.0  # feature units (real standard deviations) that normalised features approach at most


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
            cout = min(width * 2**i, 4 * width)  # the last is config.encoder_channels
            layers += [
                nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.out_channels = cin

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.convs(frames)


class DigitReader(nn.Module):
    """(N, C, S, S) -> digit logits per cell (N, classes, 4, 4): a 3x3 conv at full resolution (strokes of
    overlapping digits are a pixel or two apart), stride-2 blocks each followed by a 3x3 conv, then a 1x1
    conv naming the digits centred in each cell."""

    def __init__(self, channels: int, input_size: int, width: int, num_classes: int):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        cin = width
        for i in range(int(math.log2(input_size // 4))):
            cout = min(width * 2**i, 4 * width)
            layers += [
                nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
            cin = cout
        self.convs = nn.Sequential(*layers, nn.Conv2d(cin, num_classes, 1))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.convs(frames)


class TemporalEncoder(nn.Module):
    """(B, T, frame_dim) -> (B, motion_dim), from the features and their frame-to-frame change."""

    def __init__(self, frame_dim: int, motion_dim: int):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(2 * frame_dim, motion_dim, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(motion_dim, motion_dim, 3, padding=1),
            nn.ReLU(),
        )

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        change = torch.diff(feats, dim=1, prepend=feats[:, :1])
        x = torch.cat([feats, change], dim=2).transpose(1, 2)
        return self.convs(x).mean(dim=2)


class Evaluator(nn.Module):
    frame_mean: torch.Tensor  # buffers, set by fit.set_normalisation
    frame_scale: torch.Tensor
    video_mean: torch.Tensor
    video_scale: torch.Tensor

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        self.encoder = FrameEncoder(arch.channels, arch.input_size, arch.width)
        depth = self.encoder.out_channels
        self.project = nn.Linear(17 * depth, arch.frame_dim)  # reads what (max over the map) and where (the map)
        self.temporal = TemporalEncoder(arch.frame_dim, arch.motion_dim)
        self.order = nn.Linear(arch.motion_dim, 2)  # 0 = frames in order, 1 = shuffled
        self.classifier = nn.Linear(depth, arch.num_classes) if arch.num_classes else None
        self.reader = (
            DigitReader(arch.channels, arch.input_size, arch.width, arch.num_classes) if arch.num_classes else None
        )
        self.frame_blocks = (depth, arch.frame_dim)  # frame features: [what, where]
        self.video_blocks = (depth, arch.frame_dim, arch.motion_dim)  # video: [mean what, mean where, motion]
        # Feature normalisation, set from real data after fitting (fit.set_normalisation).
        for name, blocks in (("frame", self.frame_blocks), ("video", self.video_blocks)):
            self.register_buffer(f"{name}_mean", torch.zeros(sum(blocks)))
            self.register_buffer(f"{name}_scale", torch.ones(sum(blocks)))

    def resize(self, videos: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> frames (B*T, C, S, S) at the evaluator's input size."""
        frames = videos.transpose(1, 2).flatten(0, 1)
        size = self.arch.input_size
        if frames.shape[-1] > size:
            return F.adaptive_avg_pool2d(frames, size)
        if frames.shape[-1] < size:
            return F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)
        return frames

    def forward(self, videos: torch.Tensor, read_digits: bool = True) -> dict[str, torch.Tensor]:
        """what (B, T, D), where (B, T, F), motion (B, M), order logits (B, 2) and, with read_digits and
        labels, the encoder's digit logits (B, T, 10) and the reader's: per frame (B, T, 10) and per cell
        (B, T, 10, 4, 4)."""
        b, t = videos.shape[0], videos.shape[2]
        frames = self.resize(videos)
        maps = self.encoder(frames)
        # With labels the conv encoder learns from the digits alone: the order task, solved in a few
        # hundred steps, otherwise starves the classifier. Without labels it learns from the order task.
        shared = maps.detach() if self.classifier is not None else maps
        what = maps.amax(dim=(2, 3))
        where = F.relu(self.project(torch.cat([shared.amax(dim=(2, 3)), shared.flatten(1)], dim=1)))
        where = where.view(b, t, -1)
        motion = self.temporal(where)
        out = {"what": what.view(b, t, -1), "where": where, "motion": motion, "order": self.order(motion)}
        if self.classifier is not None and read_digits:
            out["encoder_digits"] = self.classifier(what).view(b, t, -1)
            cells = self.reader(frames)  # type: ignore[misc]  # the reader and the classifier exist together
            out["digit_cells"] = cells.view(b, t, *cells.shape[1:])
            out["digits"] = cells.amax(dim=(2, 3)).view(b, t, -1)
        return out

    @torch.no_grad()
    def raw_features(self, videos: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unnormalised frame features (B, T, D + F), video features (B, D + F + M), digit logits."""
        out = self(videos)
        frame = torch.cat([out["what"], out["where"]], dim=2)
        video = torch.cat([frame.mean(dim=1), out["motion"]], dim=1)
        return {"frame": frame, "video": video, **({"digits": out["digits"]} if "digits" in out else {})}

    @torch.no_grad()
    def features(self, videos: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised, bounded frame features (B, T, D + F), video features (B, D + F + M), digit
        probabilities (B, T, 10)."""
        raw = self.raw_features(videos)
        bounded = lambda x: BOUND * torch.tanh(x / BOUND)  # noqa: E731
        result = {
            "frame": bounded((raw["frame"] - self.frame_mean) / self.frame_scale),
            "video": bounded((raw["video"] - self.video_mean) / self.video_scale),
        }
        if "digits" in raw:
            result["probs"] = torch.sigmoid(raw["digits"])
        return result
