"""A generator that composes each frame from parts: a background and `sprites` sprites, placed by the LSTM.

z ~ U[-1, 1]^(motion + content [+ T * motion]). The content noise is cut into one code per part (the
background first, then each sprite), each decoded once per video: a sprite by a DCGAN decoder to a square
canvas `sprite_scale` of the frame's side, with an alpha channel; the background by another to a whole frame
(`decoded`), or none at all: a black ground (`black`, for data like Moving MNIST; a learnt flat colour, tried
instead, saturated its tanh to white within 400 iterations and left the sprites painting black squares).
The LSTM carries the motion noise from frame to frame, reading fresh noise (`noise`) or nothing (`none`); a
linear head turns its state at frame t into the centre of each sprite, kept so that the whole sprite stays in
the frame. Frame t is the background with the sprites laid over it in order, each by its alpha. What a part
shows cannot change within a video; only where it is can (the layered GAN of Yang et al. 2017, LR-GAN, on the
time axis of a video).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from videogan.models.generator import FrameDecoder, LayerNormLSTMCell, VideoGenerator


class LayeredGenerator(VideoGenerator):
    decoder: nn.ModuleDict

    def __init__(
        self,
        frames: int,
        frame_size: int,
        channels: int,
        motion_dim: int = 128,
        content_dim: int = 128,
        lstm_input: str = "none",
        width: int = 64,
        max_width: int = 512,
        forget_bias: float = 1.0,
        upsample: str = "transposed",
        norm: str = "layer",
        sprites: int = 2,
        sprite_scale: float = 0.5,
        background: str = "decoded",
    ):
        super().__init__()
        if lstm_input not in ("noise", "none"):
            raise ValueError(f"the layers generator's LSTM reads noise or none, not {lstm_input!r}")
        if content_dim < sprites + 1:
            raise ValueError(f"content_dim {content_dim} cannot give {sprites} sprites and a background a code each")
        self.frames, self.frame_size, self.channels = frames, frame_size, channels
        self.motion_dim, self.content_dim, self.lstm_input = motion_dim, content_dim, lstm_input
        self.sprites, self.sprite_scale = sprites, sprite_scale
        self.sprite_size = int(frame_size * sprite_scale)
        self.part_dim = content_dim // (sprites + 1)  # each part's share of the content noise
        self.lstm = LayerNormLSTMCell(motion_dim if lstm_input == "noise" else 0, motion_dim, forget_bias)
        self.place = nn.Linear(motion_dim, 2 * sprites)  # (x, y) centre of each sprite
        sprite = FrameDecoder(self.part_dim, self.sprite_size, channels + 1, width, max_width, upsample, norm)
        self.decoder = nn.ModuleDict({"sprite": sprite})  # a sprite: colour and alpha
        if background == "decoded":
            self.decoder["background"] = FrameDecoder(
                self.part_dim, frame_size, channels, width, max_width, upsample, norm
            )

    def reset_alpha(self, alpha: float = 0.05) -> None:
        """Sprites start nearly transparent (alpha `alpha` everywhere): opaque canvases from the first step are a
        trap where the critic sees squares and the generator keeps them."""
        sprite = self.decoder["sprite"]
        assert isinstance(sprite, FrameDecoder) and sprite.to_frame.bias is not None
        with torch.no_grad():  # alpha = (tanh(x) + 1) / 2 = sigmoid(2x)
            sprite.to_frame.bias[self.channels :].fill_(float(torch.logit(torch.tensor(alpha)) / 2))

    def centres(self, motion: torch.Tensor, step_noise: torch.Tensor) -> torch.Tensor:
        """(B, T, sprites, 2) sprite centres in the frame's [-1, 1] coordinates, within 1 - sprite_scale of the
        middle (the whole sprite in the frame); one LSTM step per frame."""
        h, c = motion, motion
        states = []
        for t in range(self.frames):
            h, c = self.lstm(step_noise[:, t] if self.lstm_input == "noise" else None, (h, c))
            states.append(h)
        reach = 1 - self.sprite_scale
        return reach * torch.tanh(self.place(torch.stack(states, 1))).unflatten(2, (self.sprites, 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, noise_dim [+ T * motion_dim]) -> video (B, C, T, H, W) in [-1, 1]."""
        b, t, k, c, s = z.shape[0], self.frames, self.sprites, self.channels, self.frame_size
        motion = z[:, : self.motion_dim]
        codes = z[:, self.motion_dim : self.motion_dim + (k + 1) * self.part_dim].unflatten(1, (k + 1, -1))
        step_noise = z[:, self.noise_dim :].reshape(b, t, -1)
        if "background" in self.decoder:
            background = self.decoder["background"](codes[:, 0])  # (B, C, H, W)
        else:
            background = torch.full((b, c, s, s), -1.0, dtype=z.dtype, device=z.device)
        sprites = self.decoder["sprite"](codes[:, 1:].flatten(0, 1))  # (B * K, C + 1, h, w)
        sprites = torch.cat([sprites[:, :c], (sprites[:, c:] + 1) / 2], 1)  # colour, alpha in [0, 1]
        centre = self.centres(motion, step_noise).flatten(0, 2)  # (B * T * K, 2)
        # The sprite spans [-1, 1] in its own coordinates and sprite_scale of the frame around its centre.
        theta = torch.zeros(len(centre), 2, 3, dtype=centre.dtype, device=centre.device)
        theta[:, 0, 0] = theta[:, 1, 1] = 1 / self.sprite_scale
        theta[:, :, 2] = -centre / self.sprite_scale
        size = self.sprite_size
        canvases = sprites.unflatten(0, (b, 1, k)).expand(b, t, k, c + 1, size, size).flatten(0, 2)
        grid = F.affine_grid(theta, [len(centre), c + 1, s, s], align_corners=False)
        placed = F.grid_sample(canvases, grid.to(canvases.dtype), align_corners=False)  # zeros outside: alpha 0
        placed = placed.unflatten(0, (b, t, k))  # (B, T, K, C + 1, H, W)
        frames = background[:, None].expand(b, t, c, s, s)
        for i in range(k):
            colour, alpha = placed[:, :, i, :c], placed[:, :, i, c:]
            frames = frames * (1 - alpha) + colour * alpha
        return frames.transpose(1, 2)

    def lstm_parameters(self) -> list[nn.Parameter]:
        """The motion part: the LSTM and the head that turns its state into shifts."""
        return [*self.lstm.parameters(), *self.place.parameters()]

    def decoder_parameters(self) -> list[nn.Parameter]:
        return list(self.decoder.parameters())
