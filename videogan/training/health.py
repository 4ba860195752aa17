"""Whether every loss so far was finite, kept on the device and read on the host only when asked.

Each step reports its loss; the first NaN or inf raises `found_inf`, a 0-d float flag that the fused
optimisers read (`optimizer.found_inf`, as AMP's GradScaler uses them): from that step on every update,
and the weight average, is skipped on the device. The loop calls `check` before it logs or writes a
snapshot, a resume state or the final checkpoint, so nothing written ever holds a non-finite update,
and training stops there naming the last good resume state.
"""

from __future__ import annotations

from pathlib import Path

import torch

from videogan.errors import TrainingDiverged  # noqa: F401  (raised here; also importable from here)

NETWORKS = ("critic", "generator")


class FiniteGuard:
    def __init__(self, device: torch.device):
        self.found_inf = torch.zeros((), device=device)  # 1.0 once a loss was not finite
        self._where = torch.zeros((), dtype=torch.float64, device=device)  # network + 2 * iteration of the first
        self._value = torch.zeros((), dtype=torch.float64, device=device)  # and its loss

    def observe(self, loss: torch.Tensor, network: str, iteration: int) -> None:
        loss = loss.detach()
        finite = torch.isfinite(loss)
        first = finite.logical_not() & (self.found_inf == 0)
        self._where = torch.where(first, float(NETWORKS.index(network) + 2 * iteration), self._where)
        self._value = torch.where(first, loss.double(), self._value)
        self.found_inf.masked_fill_(finite.logical_not(), 1.0)

    def keep_weight(self) -> torch.Tensor:
        """1 while training is finite, 0 after: multiplies updates the optimisers do not make."""
        return 1.0 - self.found_inf

    def check(self, last_good: Path) -> None:
        """Raise TrainingDiverged if any loss so far was not finite (reads the device flag: a sync)."""
        if not self.found_inf.item():
            return
        where, value = int(self._where.item()), self._value.item()
        network, iteration = NETWORKS[where % 2], where // 2
        raise TrainingDiverged(
            f"the {network} loss became {value} at iteration {iteration}; no update was applied from "
            f"that step on and nothing was saved after it: the last good state is {last_good}. "
            "Lower the learning rates or gradient-clipping norms, or raise train.gp_lambda."
        )
