"""The training loop on a GPU at the full size, in one command (a few minutes from a clean checkout).

    python benchmarks/gpu.py                      # CUDA: prints a table, writes reports/gpu_benchmark.json
    python benchmarks/gpu.py --no-compile         # skip the torch.compile variants (their warm-up is the slow part)
    python benchmarks/gpu.py --device cpu --size tiny --iterations 3 --no-compile   # a smoke run anywhere

It builds its own small clip store (bouncing squares at the profile's clip shape: speed does not depend
on what the clips show) and measures, in one process:
  - the in-process matmul rate (bf16 8192^3 on CUDA; float32 1024^3 on CPU), the yardstick;
  - each step (critic, critic + penalty, generator) at the size: ms, TFLOP/s and the fraction of
    that rate, under bf16 autocast on CUDA; kernels per step (torch.profiler: CUDA kernels on a GPU,
    top-level aten operators on CPU);
  - steady-state it/s of the real loop (`Trainer`, bursts off) for amp none/bf16 x compile off/on,
    and host syncs per iteration (`torch.cuda.set_sync_debug_mode`, CUDA only).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from iteration import profile_config, top_level_aten_ops  # noqa: E402
from train_step import count_flops, step_functions, sync, timed  # noqa: E402

from videogan.config import Config  # noqa: E402
from videogan.data.batches import open_training_batches  # noqa: E402
from videogan.data.preprocess import prepare  # noqa: E402
from videogan.training.loop import OutputPaths, Trainer  # noqa: E402

TINY = [
    "data.frame_size=16",
    "data.frames=8",
    "model.generator.motion_dim=16",
    "model.generator.content_dim=16",
    "model.generator.width=8",
    "model.generator.max_width=32",
    "model.critic.widths=[8, 16, 32, 32]",
    "train.batch_size=8",
]
SQUARES = [
    "data.dataset=bouncing_squares",
    "data.bouncing_squares.num_videos=256",
    "data.bouncing_squares.square_size=6",
]


def config_for(size: str, device: str, amp: str = "none", compile_: bool = False) -> Config:
    """The full size (or a tiny one) in steady state, on a store of bouncing squares."""
    extra = SQUARES + [f"train.amp={amp}"] + (TINY if size == "tiny" else [])
    return profile_config("full", None, compile_, extra, device)


def matmul_rate(device: torch.device) -> tuple[float, str]:
    n, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (1024, torch.float32)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    return 2 * n**3 / timed(lambda: a @ b, 10, device), f"{str(dtype).removeprefix('torch.')} {n}^3"


def autocast(device: torch.device, amp: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16" and device.type == "cuda")


def kernels_in(fn, device: torch.device) -> int:
    if device.type != "cuda":
        return top_level_aten_ops(fn)
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        fn()
        sync(device)
    return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)


def step_table(config: Config, device: torch.device, peak: float, amp: str) -> list[dict]:
    rows = []
    for name, fn in step_functions(config, device).items():

        def run(fn=fn):
            with autocast(device, amp):
                fn()

        flops = count_flops(run)
        seconds = timed(run, 5, device)
        rows.append(
            {
                "step": name,
                "amp": amp,
                "gflop": flops / 1e9,
                "ms": seconds * 1e3,
                "tflops": flops / seconds / 1e12,
                "of_matmul": flops / seconds / peak,
                "kernels": kernels_in(run, device),
            }
        )
    return rows


def loop_speed(config: Config, store: Path, device: torch.device, iterations: int, warmup: int) -> dict:
    batches = open_training_batches(config, store, config.train.batch_size, config.train.seed)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, batches, OutputPaths.under(tmp), say=lambda *_: None)
        stream = batches.stream(device=trainer.device)
        started = time.perf_counter()
        for _ in range(warmup):
            trainer._iteration(stream, False)
        sync(device)
        warm_s = time.perf_counter() - started
        syncs = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode("warn")
            start = time.perf_counter()
            for _ in range(iterations):
                trainer._iteration(stream, False)
            sync(device)
            seconds = time.perf_counter() - start
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode(0)
                syncs = sum("synchroniz" in str(w.message) for w in caught) / iterations
    del trainer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "amp": config.train.amp,
        "compile": config.train.compile,
        "it_per_s": iterations / seconds,
        "warmup_s": warm_s,
        "host_syncs_per_iteration": syncs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", choices=["full", "tiny"], default="full")
    parser.add_argument("--iterations", type=int, default=50, help="timed loop iterations per variant")
    parser.add_argument("--warmup", type=int, default=5, help="loop iterations before timing (compiles here)")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled variants")
    parser.add_argument("--out", type=Path, default=ROOT / "reports/gpu_benchmark.json")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: no CUDA device is visible; run this on a GPU machine, or pass --device cpu")
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    peak, yardstick = matmul_rate(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{name}, torch {torch.__version__}; matmul {yardstick}: {peak / 1e12:.1f} TFLOP/s")

    config = config_for(args.size, args.device)
    steps = [row for amp in ("none", "bf16") for row in step_table(config, device, peak, amp)]
    print(f"\n{'step':16} {'amp':5} {'GFLOP':>8} {'ms':>8} {'TFLOP/s':>8} {'of matmul':>10} {'kernels':>8}")
    for r in steps:
        print(
            f"{r['step']:16} {r['amp']:5} {r['gflop']:8.1f} {r['ms']:8.2f} {r['tflops']:8.2f} "
            f"{r['of_matmul']:10.3f} {r['kernels']:8d}"
        )

    loops = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        prepare(config, Path(tmp) / "raw", store, progress=False)
        for compile_ in (False,) if args.no_compile else (False, True):
            for amp in ("none", "bf16"):
                loops.append(
                    loop_speed(
                        config_for(args.size, args.device, amp, compile_), store, device, args.iterations, args.warmup
                    )
                )
    print(f"\n{'amp':5} {'compile':8} {'it/s':>7} {'warm-up s':>10} {'host syncs/it':>14}")
    for r in loops:
        syncs = "n/a" if r["host_syncs_per_iteration"] is None else f"{r['host_syncs_per_iteration']:.2f}"
        print(f"{r['amp']:5} {str(r['compile']):8} {r['it_per_s']:7.2f} {r['warmup_s']:10.1f} {syncs:>14}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "device": name,
                "torch": torch.__version__,
                "size": args.size,
                "matmul": yardstick,
                "matmul_tflops": peak / 1e12,
                "steps": steps,
                "loop": loops,
            },
            indent=1,
        )
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
