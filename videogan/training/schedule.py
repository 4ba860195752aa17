"""How many steps each network trains per generator iteration, and the instance-noise level.

Critic: `n_critic` steps, or `burst_steps` during the first `burst_first`
iterations and on every `burst_every`-th (the WGAN habit). Thresholds are off
by default; when set, a network keeps training past its scheduled steps while
its loss stays above the threshold, up to its cap. (The original code's
thresholds were on by default and silently made every schedule 1:1.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from videogan.config import InstanceNoiseConfig, ScheduleConfig


@dataclass(frozen=True)
class StepCount:
    steps: int
    last_loss: torch.Tensor | float  # the last step's loss, as the step returned it (on the device)


def scheduled_critic_steps(schedule: ScheduleConfig, iteration: int) -> int:
    burst = iteration < schedule.burst_first or (
        schedule.burst_every > 0 and iteration > 0 and iteration % schedule.burst_every == 0
    )
    return schedule.burst_steps if burst else schedule.n_critic


def run_until(
    step: Callable[[int], torch.Tensor | float], scheduled: int, threshold: float | None, cap: int
) -> StepCount:
    """Call `step(i)` `scheduled` times, then, if a threshold is set, until the loss is at or below it
    or `max(cap, scheduled)` steps were taken. `step` returns the loss of the step it took; only a
    threshold reads it on the host (a device sync per step)."""
    loss: torch.Tensor | float = float("nan")
    steps = 0
    limit = scheduled if threshold is None else max(cap, scheduled)
    while steps < limit:
        loss = step(steps)
        steps += 1
        if steps >= scheduled and (threshold is None or float(loss) <= threshold):
            break
    return StepCount(steps, loss)


def instance_noise_sigma(noise: InstanceNoiseConfig, iteration: int) -> float:
    """Linear anneal from `sigma` at iteration 0 to 0 at `anneal_iterations`."""
    return noise.sigma * max(0.0, 1.0 - iteration / noise.anneal_iterations)
