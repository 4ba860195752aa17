"""Evaluation benchmark: seconds to fit the evaluator, and to evaluate `evaluate.num_samples` videos.

    .venv/bin/python benchmarks/evaluate.py                       # demo (params.yaml), 1,000 samples
    .venv/bin/python benchmarks/evaluate.py --profile full        # the library defaults (a GPU job)
    .venv/bin/python benchmarks/evaluate.py --num-samples 500 --threads 1 --set evaluator.width=16

It builds a clip store for the profile in a temporary folder (test split = 2 x num_samples, the least
evaluation accepts), fits the evaluator on it (timed), saves an untrained generator as the checkpoint
and its step-0 snapshot, then times `evaluate` end to end: sampling both generators, features of the
two real halves and the two generated sets, and every metric. Numbers are wall-clock seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from videogan.config import Config, load_config, to_dict  # noqa: E402
from videogan.data.preprocess import prepare  # noqa: E402
from videogan.metrics.run import evaluate_checkpoint, fit_from_store  # noqa: E402
from videogan.models import build_generator  # noqa: E402
from videogan.training.checkpoint import FORMAT, save_atomic  # noqa: E402


def profile_config(profile: str, num_samples: int, overrides: list[str]) -> Config:
    params = ROOT / "params.yaml" if profile == "demo" else None
    sizes = [f"evaluate.num_samples={num_samples}", f"data.moving_mnist_generated.test_sequences={2 * num_samples}"]
    return load_config(params, sizes + overrides)


def save_untrained(config: Config, folder: Path) -> tuple[Path, Path]:
    state = {
        "format": FORMAT,
        "kind": "generator",
        "config": to_dict(config),
        "step": 0,
        "generator": build_generator(config).state_dict(),
    }
    return (
        save_atomic(state, folder / "checkpoint.pt"),
        save_atomic(state, folder / "snapshots" / "step_0000000.pt").parent,
    )


def timed(label: str, fn):
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    print(f"{label}: {seconds:.1f} s", flush=True)
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["demo", "full"], default="demo")
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="KEY=VALUE",
        help="override a params key, e.g. evaluator.epochs=8 (repeatable)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = profile_config(args.profile, args.num_samples, args.overrides)
    d = config.data
    e = config.evaluator
    print(
        f"[{args.profile}] {d.dataset} {d.frame_size}x{d.frame_size}, {config.frames} frames, "
        f"{args.num_samples} samples, {torch.get_num_threads()} threads, device {config.evaluate.device}; "
        f"evaluator width {e.width}, {e.epochs} epochs of {e.max_clips} clips at most"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        timed("store", lambda: prepare(config, tmp / "raw", tmp / "store", progress=False))
        info, fit_s = timed(
            "fit-evaluator", lambda: fit_from_store(config, tmp / "store", tmp / "evaluator.pt", progress=False)
        )
        checkpoint, snapshots = save_untrained(config, tmp / "models")
        metrics, eval_s = timed(
            "evaluate",
            lambda: evaluate_checkpoint(
                config, tmp / "store", tmp / "evaluator.pt", checkpoint, snapshots, progress=False
            ),
        )
    accuracy = ", ".join(f"{k} {v:.3f}" for k, v in info["accuracy"].items())
    print(
        f"[{args.profile}] fit-evaluator {fit_s:.1f} s (held-out accuracy {accuracy}); "
        f"evaluate {args.num_samples} samples {eval_s:.1f} s; fd_video {metrics['fd_video']:.1f} "
        f"vs fd_video_ref {metrics['fd_video_ref']:.2f}"
    )


if __name__ == "__main__":
    main()
