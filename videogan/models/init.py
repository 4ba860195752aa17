"""Weight initialisation: Glorot (the original's) or DCGAN's N(0, 0.02)."""

from __future__ import annotations

from torch import nn

from videogan.models.generator import LayerNormLSTMCell
from videogan.models.layers import LayeredGenerator

_WEIGHTED = (nn.Linear, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)


def initialise(module: nn.Module, scheme: str = "glorot") -> None:
    for m in module.modules():
        if isinstance(m, _WEIGHTED):
            if scheme == "glorot":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            bias = getattr(m, "bias", None)
            if bias is not None:
                nn.init.zeros_(bias)
        elif isinstance(m, LayerNormLSTMCell):
            m.reset_gate_shift()
    if isinstance(module, LayeredGenerator):
        module.reset_alpha()
