"""Time the training steps and compare their FLOP rate with a plain matrix multiply.

    python benchmarks/train_step.py [--profiles full demo] [--repeats 3] [--device cpu] [--batch 2] [--amp none bf16]

For each profile (`full`: the library defaults; `demo`: params.yaml), each `--amp` (float32, bf16 autocast)
and each step (critic without its penalties, critic with them, generator) of the profile's own loss and
penalty (WGAN-GP or R1), FLOPs are counted with
torch.utils.flop_counter's formulas, the step is timed on the code the loop
runs, and the achieved rate is printed as a fraction of a large float32
matmul's rate measured in the same process, so the ratios hold on a noisy
machine. `aten ops` counts the operators the step dispatches (top-level ones, with
torch.profiler; benchmarks/iteration.py counts whole iterations the same way).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from iteration import top_level_aten_ops  # noqa: E402

from videogan.config import Config, config_from_dict, load_config, to_dict  # noqa: E402
from videogan.devices import autocast  # noqa: E402
from videogan.training.state import TrainingState  # noqa: E402
from videogan.training.steps import (  # noqa: E402
    Networks,
    StepSetup,
    critic_step_loss,
    draw,
    generator_step_loss,  # noqa: E402
    make_fakes,
    step_rng,
)

ROOT = Path(__file__).resolve().parents[1]


def matmul_rate(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    return 2 * n**3 / timed(lambda: a @ b, repeats, device)


def timed(fn, repeats: int, device: torch.device) -> float:
    fn()
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_functions(config: Config, device: torch.device):
    state = TrainingState.fresh(config, device)
    g, d = state.generator, state.critic
    nets = Networks.build(g, d)
    batch, train = config.train.batch_size, config.train
    setup = StepSetup.of(g, d, train.loss, train.gp_lambda, train.augment, config.model.image_critic, train.r1_gamma)
    real = torch.rand(batch, *setup.video_shape, device=device) * 2 - 1
    sigma = train.instance_noise.sigma

    def critic(penalty: bool):
        draws = draw(setup, batch, sigma, step_rng(0, "critic", 0, device), True)

        def run():
            d.zero_grad(set_to_none=True)
            fake = make_fakes(nets, [draws])[0]
            loss, _ = critic_step_loss(nets, real, fake, draws, setup, 1.0 if penalty else 0.0)
            loss.backward()

        return run

    def generator():
        draws = draw(setup, batch, sigma, step_rng(0, "generator", 0, device), False)

        def run():
            g.zero_grad(set_to_none=True)
            d.requires_grad_(False)
            generator_step_loss(nets, draws, setup).backward()
            d.requires_grad_(True)

        return run

    return {"critic": critic(False), "critic+penalty": critic(True), "generator": generator()}


class FlopCount(TorchDispatchMode):
    """torch.utils.flop_counter's formulas without its module tracker, which rejects autograd.grad."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def count_flops(fn) -> int:
    with FlopCount() as counter:
        fn()
    return counter.total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", nargs="+", default=["full", "demo"], choices=["full", "demo"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=None, help="override train.batch_size")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml", help="the demo profile's params file")
    parser.add_argument("--amp", nargs="+", default=["none"], choices=["none", "bf16"], help="autocast dtypes")
    args = parser.parse_args()
    device = torch.device(args.device)
    peak = matmul_rate(device)
    print(f"device {device}, {torch.get_num_threads()} threads; float32 matmul 2048^2: {peak / 1e9:.1f} GFLOP/s")
    print(
        f"{'profile':8} {'amp':5} {'step':16} {'GFLOP':>8} {'ms':>9} {'GFLOP/s':>9} {'of matmul':>10} {'aten ops':>9}"
    )
    for profile, amp in ((p, a) for p in args.profiles for a in args.amp):
        config = Config() if profile == "full" else load_config(args.params)
        if args.batch:
            raw = to_dict(config)
            raw["train"]["batch_size"] = args.batch
            config = config_from_dict(raw)
        for name, step in step_functions(config, device).items():

            def fn(step=step, amp=amp):
                with autocast(amp, device):
                    step()

            flops = count_flops(fn)
            seconds = timed(fn, args.repeats, device)
            rate = flops / seconds
            print(
                f"{profile:8} {amp:5} {name:16} {flops / 1e9:8.2f} {seconds * 1e3:9.1f} "
                f"{rate / 1e9:9.1f} {rate / peak:10.2f} {top_level_aten_ops(fn):9d}"
            )


if __name__ == "__main__":
    main()
