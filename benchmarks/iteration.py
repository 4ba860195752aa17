"""Whole training iterations on the real loop: aten ops dispatched per iteration, and steady-state it/s.

    python benchmarks/iteration.py ops  [--profile full] [--batch 2] [--compile]
    python benchmarks/iteration.py loop [--profile demo] [--iterations 60] [--compile] [--set train.channels_last=true]

`ops` counts the aten operators the CPU dispatches in one ordinary iteration (n_critic critic steps,
one generator step, the optimisers, clipping and the weight average, bursts off), with
torch.profiler: an operator called from inside another one (aten::conv3d -> aten::convolution -> ...)
counts once, and what a compiled graph runs as one fused kernel is not an aten operator.
`loop` times ordinary iterations of `Trainer` after a warm-up and prints it/s.
Both build the loop over random clips in memory, so they need no clip store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from videogan.config import Config, apply_overrides, config_from_dict, load_config, to_dict  # noqa: E402
from videogan.data.batches import ClipBatches  # noqa: E402
from videogan.training.loop import OutputPaths, Trainer  # noqa: E402


def profile_config(name: str, batch: int | None, compile_: bool, extra: list[str] = (), device: str = "cpu") -> Config:
    """A profile (`full` or `demo`) in steady state: bursts off, no outputs, endless."""
    raw = to_dict(Config() if name == "full" else load_config(ROOT / "params.yaml"))
    train = raw["train"]
    train["schedule"].update(burst_first=0, burst_every=0)
    train.update(
        compile=compile_,
        log_every=10**9,
        snapshot_every=10**9,
        resume_every=10**9,
        video_every=10**9,
        iterations=10**9,
        device=device,
    )
    if batch:
        train["batch_size"] = batch
    return config_from_dict(apply_overrides(raw, list(extra)))


def trainer_for(config: Config, root: Path) -> tuple[Trainer, object]:
    rng = np.random.default_rng(0)
    size, frames = config.data.frame_size, config.frames
    clips = rng.integers(0, 256, (64, frames, size, size, config.data.channels), dtype=np.uint8)
    trainer = Trainer(
        config, ClipBatches(clips, config.train.batch_size, frames), OutputPaths.under(root), say=lambda *_: None
    )
    return trainer, trainer.batches.stream()


def top_level_aten_ops(fn) -> int:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    count = 0
    for event in prof.events():
        if not event.name.startswith("aten::"):
            continue
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith("aten::"):
            parent = parent.cpu_parent
        count += parent is None
    return count


def ops(args) -> None:
    config = profile_config(args.profile, args.batch, args.compile, args.set)
    with tempfile.TemporaryDirectory() as tmp:
        trainer, stream = trainer_for(config, Path(tmp))
        for _ in range(3):  # warm-up: optimiser state, compiled graphs
            trainer._iteration(stream, False)
        count = top_level_aten_ops(lambda: [trainer._iteration(stream, False) for _ in range(args.repeats)])
    print(
        f"{args.profile} batch {config.train.batch_size} n_critic {config.train.schedule.n_critic} "
        f"compile {args.compile}: {count / args.repeats:.0f} aten ops per iteration"
    )


def loop(args) -> None:
    config = profile_config(args.profile, args.batch, args.compile, args.set)
    with tempfile.TemporaryDirectory() as tmp:
        trainer, stream = trainer_for(config, Path(tmp))
        for _ in range(args.warmup):
            trainer._iteration(stream, False)
        start = time.perf_counter()
        for _ in range(args.iterations):
            trainer._iteration(stream, False)
        seconds = time.perf_counter() - start
    print(
        f"{args.profile} batch {config.train.batch_size} compile {args.compile} {' '.join(args.set)}, "
        f"{torch.get_num_threads()} threads: {args.iterations / seconds:.2f} it/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["ops", "loop"])
    parser.add_argument("--profile", choices=["full", "demo"], default=None)
    parser.add_argument("--batch", type=int, default=None, help="override train.batch_size")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config override")
    parser.add_argument("--repeats", type=int, default=2, help="iterations profiled (ops)")
    parser.add_argument("--warmup", type=int, default=10, help="iterations before timing (loop)")
    parser.add_argument("--iterations", type=int, default=60, help="iterations timed (loop)")
    args = parser.parse_args()
    if args.what == "ops":
        args.profile, args.batch = args.profile or "full", args.batch or 2
        ops(args)
    else:
        args.profile = args.profile or "demo"
        loop(args)


if __name__ == "__main__":
    main()
