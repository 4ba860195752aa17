"""Generator: an LSTM carries the motion noise from frame to frame, a DCGAN decoder renders each frame.

z ~ U[-1, 1]^(motion + content). The motion part seeds the LSTM's hidden and
cell state; the content part is held fixed for the whole video. Frame t is
decoded from (h_t, content); the LSTM then steps to h_{t+1}, reading the frame
just made (`frame`, the original's choice), fresh noise (`noise`) or nothing.
h_0 is the motion noise itself (`first_frame="noise"`, the original's), or one
LSTM step on it (`"lstm"`: reading the first step noise, or a blank frame), so
that frame 0 is decoded from the same kind of code as every later frame.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LayerNormLSTMCell(nn.Module):
    """LSTM cell with LayerNorm on each gate's pre-activation and on the cell (Ba et al. 2016)."""

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 1.0):
        super().__init__()
        self.hidden_size = hidden_size
        self.input_size = input_size
        self.weight = nn.Linear(input_size + hidden_size, 4 * hidden_size, bias=False)
        self.gate_scale = nn.Parameter(torch.ones(4, hidden_size))
        self.gate_shift = nn.Parameter(torch.zeros(4, hidden_size))
        self.cell_norm = nn.LayerNorm(hidden_size)
        self.forget_bias = forget_bias
        self.reset_gate_shift()

    def reset_gate_shift(self) -> None:
        with torch.no_grad():
            self.gate_shift.zero_()
            self.gate_shift[2].fill_(self.forget_bias)  # gate order: input, candidate, forget, output

    def forward(self, x: torch.Tensor | None, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = state
        inputs = h if x is None else torch.cat([x, h], dim=1)
        gates = self.weight(inputs).view(-1, 4, self.hidden_size)
        gates = torch.addcmul(self.gate_shift, F.layer_norm(gates, (self.hidden_size,)), self.gate_scale)
        i, g, f, o = gates.unbind(1)
        c = self.cell_norm(torch.addcmul(torch.sigmoid(f) * c, torch.sigmoid(i), torch.tanh(g)))
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


def decoder_widths(frame_size: int, width: int, max_width: int) -> list[int]:
    """Channels at 4x4, 8x8, ..., frame_size: `width` at full size, doubling towards 4x4, capped."""
    blocks = int(math.log2(frame_size // 4))
    return [min(max_width, width * 2 ** (blocks - i)) for i in range(blocks + 1)]


def upsampling(cin: int, cout: int, mode: str) -> list[nn.Module]:
    """Double the resolution: a transposed conv (k4 s2, the DCGAN's) or nearest-neighbour + 3x3 conv,
    which avoids the transposed conv's checkerboard (Odena et al. 2016)."""
    if mode == "transposed":
        return [nn.ConvTranspose2d(cin, cout, 4, 2, 1)]
    return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1)]


def normalisation(channels: int, kind: str) -> nn.Module:
    """`layer`: LayerNorm over (C, H, W) with a per-channel affine (the original's); `batch`: BatchNorm over the
    batch's frames (DCGAN's, MoCoGAN's): batch statistics in training, running ones in eval mode."""
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.GroupNorm(1, channels)


class FrameDecoder(nn.Module):
    """DCGAN decoder: linear to 4x4, (upsampling, norm, ReLU) per doubling, 3x3 conv, tanh."""

    def __init__(
        self,
        in_dim: int,
        frame_size: int,
        channels: int,
        width: int,
        max_width: int,
        upsample: str = "transposed",
        norm: str = "layer",
    ):
        super().__init__()
        widths = decoder_widths(frame_size, width, max_width)
        self.stem_shape = (widths[0], 4, 4)
        self.stem = nn.Linear(in_dim, widths[0] * 16)
        self.stem_norm = normalisation(widths[0], norm)
        blocks = []
        for cin, cout in zip(widths[:-1], widths[1:]):
            blocks += [*upsampling(cin, cout, upsample), normalisation(cout, norm), nn.ReLU(inplace=True)]
        self.blocks = nn.Sequential(*blocks)
        self.to_frame = nn.Conv2d(widths[-1], channels, 3, padding=1)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        x = self.stem(code).view(-1, *self.stem_shape)
        x = F.relu(self.stem_norm(x), inplace=True)
        return torch.tanh(self.to_frame(self.blocks(x)))


class VideoGenerator(nn.Module):
    """What every generator shares: its noise, its shape, and its two parameter groups (motion and decoder)."""

    frames: int
    frame_size: int
    channels: int
    motion_dim: int
    content_dim: int
    lstm_input: str
    decoder: nn.Module  # what renders pixels (channels_last applies to it)

    @property
    def noise_dim(self) -> int:
        return self.motion_dim + self.content_dim

    def step_noise_dim(self) -> int:
        """Size of the fresh noise the LSTM reads per step (`noise` input mode only)."""
        return self.motion_dim if self.lstm_input == "noise" else 0

    def sample_noise(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """Everything the generator needs for n videos: (n, noise_dim + frames * step_noise_dim)."""
        dim = self.noise_dim + self.frames * self.step_noise_dim()
        return torch.rand(n, dim, generator=generator).to(device) * 2 - 1

    def lstm_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def decoder_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError


class Generator(VideoGenerator):
    def __init__(
        self,
        frames: int,
        frame_size: int,
        channels: int,
        motion_dim: int = 128,
        content_dim: int = 128,
        lstm_input: str = "frame",
        width: int = 64,
        max_width: int = 512,
        forget_bias: float = 1.0,
        upsample: str = "transposed",
        first_frame: str = "noise",
        norm: str = "layer",
    ):
        super().__init__()
        self.first_frame = first_frame
        self.frames, self.frame_size, self.channels = frames, frame_size, channels
        self.motion_dim, self.content_dim, self.lstm_input = motion_dim, content_dim, lstm_input
        input_size = {"frame": channels * frame_size**2, "noise": motion_dim, "none": 0}[lstm_input]
        self.lstm = LayerNormLSTMCell(input_size, motion_dim, forget_bias)
        self.decoder = FrameDecoder(motion_dim + content_dim, frame_size, channels, width, max_width, upsample, norm)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, noise_dim [+ T * step noise]) -> video (B, C, T, H, W) in [-1, 1]."""
        motion = z[:, : self.motion_dim]
        content = z[:, self.motion_dim : self.noise_dim]
        step_noise = z[:, self.noise_dim :].reshape(z.shape[0], self.frames, -1)
        h, c = motion, motion
        warm_up = self.first_frame == "lstm"
        if warm_up:
            first: torch.Tensor | None
            if self.lstm_input == "noise":
                first = step_noise[:, 0]
            else:
                first = motion.new_zeros(z.shape[0], self.lstm.input_size) if self.lstm.input_size else None
            h, c = self.lstm(first, (h, c))
        if self.lstm_input == "frame":
            return self._render_autoregressive(h, c, content)
        states = [h]
        for t in range(self.frames - 1):
            x = step_noise[:, t + warm_up] if self.lstm_input == "noise" else None
            h, c = self.lstm(x, (h, c))
            states.append(h)
        codes = torch.stack(states, 1)  # (B, T, motion)
        codes = torch.cat([codes, content[:, None].expand(-1, self.frames, -1)], dim=2)
        frames = self.decoder(codes.flatten(0, 1))  # all frames in one batch
        return frames.view(z.shape[0], self.frames, *frames.shape[1:]).transpose(1, 2)

    def _render_autoregressive(self, h, c, content) -> torch.Tensor:
        frames = []
        for t in range(self.frames):
            frame = self.decoder(torch.cat([h, content], dim=1))
            frames.append(frame)
            if t + 1 < self.frames:
                h, c = self.lstm(frame.flatten(1), (h, c))
        return torch.stack(frames, dim=2)

    def lstm_parameters(self) -> list[nn.Parameter]:
        return list(self.lstm.parameters())

    def decoder_parameters(self) -> list[nn.Parameter]:
        return list(self.decoder.parameters())
