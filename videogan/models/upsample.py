"""A 2x transposed convolution (kernel 4, stride 2, padding 1) computed on the fast path.

PyTorch's CPU ConvTranspose2d runs far below the convolution fast path. The
same operator splits into four 2x2 convolutions, one per output parity; they
share one padded input, so a single conv2d with 4x the output channels does
all four, and a reshape interleaves them. The parameter is the ordinary
ConvTranspose2d weight (in, out, 4, 4), so checkpoints and init are the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# For output parity a (0 even, 1 odd) the 2x2 window over the padded input
# reads these transposed-conv kernel taps, in window order.
_TAPS = ((3, 1), (2, 0))


def subpixel_weight(weight: torch.Tensor) -> torch.Tensor:
    """(in, out, 4, 4) transposed-conv weight -> (4 * out, in, 2, 2) conv weight, parity-major."""
    parts = []
    for a in (0, 1):
        for b in (0, 1):
            rows = weight[:, :, list(_TAPS[a])]
            parts.append(rows[:, :, :, list(_TAPS[b])])
    return torch.cat(parts, dim=1).transpose(0, 1)


class Upsample2x(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, fast: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels, 4, 4))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.fast = fast
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fast:
            return F.conv_transpose2d(x, self.weight, self.bias, stride=2, padding=1)
        n, _, h, w = x.shape
        cout = self.weight.shape[1]
        y = F.conv2d(F.pad(x, (1, 1, 1, 1)), subpixel_weight(self.weight))  # (n, 4*cout, h+1, w+1)
        y = y.view(n, 2, 2, cout, h + 1, w + 1)
        even_even = y[:, 0, 0, :, :h, :w]
        even_odd = y[:, 0, 1, :, :h, 1:]
        odd_even = y[:, 1, 0, :, 1:, :w]
        odd_odd = y[:, 1, 1, :, 1:, 1:]
        rows_even = torch.stack([even_even, even_odd], dim=-1)  # (n, cout, h, w, 2)
        rows_odd = torch.stack([odd_even, odd_odd], dim=-1)
        out = torch.stack([rows_even, rows_odd], dim=3)  # (n, cout, h, 2, w, 2)
        return out.reshape(n, cout, 2 * h, 2 * w) + self.bias.view(1, -1, 1, 1)
