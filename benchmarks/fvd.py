"""FVD benchmark: what the Kinetics-400 I3D costs per video, what FVD adds to the evaluate stage, and whether
FVD separates real videos from broken ones at the demo's 10 frames as at the papers' 16.

    .venv/bin/python benchmarks/fvd.py                          # cost in the demo profile (params.yaml)
    .venv/bin/python benchmarks/fvd.py --profiles demo full     # and in the full one (a GPU job)
    .venv/bin/python benchmarks/fvd.py --separation 128         # + the separation table, 128 videos per set
    .venv/bin/python benchmarks/fvd.py --profiles --separation 128   # the table alone
    ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python benchmarks/fvd.py  # the code path of a CPU without AVX-512

"stage" is FVD's share of `videogan evaluate`: I3D on four sets of `evaluate.fvd.videos` videos (real A,
real B, generated, step 0) and three Fréchet distances. The videos are Moving MNIST clips drawn by the
tests' offline generator (tests/test_metrics_moving_digits.py). Wall-clock seconds on the CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_metrics_moving_digits import moving_digits  # noqa: E402

from videogan.config import load_config  # noqa: E402
from videogan.metrics.distances import frechet_distance  # noqa: E402
from videogan.metrics.fvd import FvdScorer, i3d_logits  # noqa: E402
from videogan.metrics.i3d import load_i3d  # noqa: E402


def stage_seconds(profile: str) -> None:
    config = load_config(ROOT / "params.yaml" if profile == "demo" else None)
    cfg, frames, size = config.evaluate.fvd, config.frames, config.data.frame_size
    n = cfg.videos or config.evaluate.num_samples
    clips, _ = moving_digits(4 * n, frames=frames, size=size, seed=0)
    started = time.perf_counter()
    scorer = FvdScorer.build(clips[:n], clips[n : 2 * n], cfg)
    scores = scorer.score(clips[2 * n : 3 * n], clips[3 * n :])
    seconds = time.perf_counter() - started
    print(
        f"[{profile}] {size}x{size}, {scorer.frames} of {frames} frames, {n} videos per set: stage +{seconds:.1f} s "
        f"({seconds / (4 * n):.3f} s per video); fvd {scores['fvd']:.1f}, fvd_ref {scores['fvd_ref']:.1f}",
        flush=True,
    )


def separation(n: int, frames: int, size: int) -> None:
    """FVD against real half A of: real half B, A itself, and three broken sets made from a third real set."""
    model = load_i3d()
    clips, _ = moving_digits(3 * n, frames=frames, size=size, seed=20)
    a, b, c = clips[:n], clips[n : 2 * n], clips[2 * n :]
    rng = np.random.default_rng(1)
    candidates = {
        "real B (fvd_ref)": b,
        "identical": a,
        "shuffled frames": np.stack([v[rng.permutation(frames)] for v in c]),
        "static (frame 0)": np.repeat(c[:, :1], frames, 1),
        "noise": rng.integers(0, 256, c.shape, dtype=np.uint8),
        "one digit": moving_digits(n, frames=frames, size=size, k=1, seed=21)[0],
    }
    real = i3d_logits(model, a, frames, 16)
    values = {name: frechet_distance(i3d_logits(model, v, frames, 16), real) for name, v in candidates.items()}
    ref = values["real B (fvd_ref)"]
    print(f"separation, {frames} frames of {size}x{size}, {n} videos per set:")
    for name, value in values.items():
        print(f"  {name:18s} {value:9.1f}  ({value / ref:.2f}x fvd_ref)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--separation",
        type=int,
        default=0,
        metavar="N",
        help="also print the separation table with N videos per set (0: skip)",
    )
    parser.add_argument(
        "--profiles",
        nargs="*",
        default=["demo"],
        choices=["demo", "full"],
        help="full: 4 x 1,000 videos of 16 frames, about 12 minutes on 2 CPU cores",
    )
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset: the best the CPU has)')}"
    )
    for profile in args.profiles:
        stage_seconds(profile)
    if args.separation:
        separation(args.separation, 10, 32)
        separation(args.separation, 16, 64)


if __name__ == "__main__":
    main()
