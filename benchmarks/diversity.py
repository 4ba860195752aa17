"""Sample-diversity study: train the demo profile under several option sets and seeds, score each result.

    .venv/bin/python benchmarks/diversity.py --store data/processed --evaluator models/evaluator.pt \\
        --variant baseline --variant "msd=model.critic.minibatch_std=4" \\
        --variant "augment=train.augment.translation=0.125;train.augment.cutout=0.25" --seeds 0 1 2

Each run is `videogan train` (params.yaml plus the variant's overrides and `train.seed`) into its own folder
under --out, then `videogan evaluate` of its checkpoint against the store's real test split, then every
snapshot scored by the same scorer (FVD left out there); two runs go side by side, one thread each. The table
(--out/table.md) holds per run: fd_video / fd_video_init, modes_covered, classes_covered, recall,
content_consistency, recognisable_frames, digits_per_frame, fvd (with fvd_ref), train seconds per iteration,
and the snapshot with the lowest fd_video. --out/snapshots.md has every snapshot's row. Every run's
metrics.json and snapshots.json stay in its folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEOGAN = [sys.executable, "-m", "videogan.cli"]
COLUMNS = [
    "modes_covered",
    "classes_covered",
    "recall",
    "content_consistency",
    "recognisable_frames",
    "digits_per_frame",
]


def parse_variant(text: str) -> tuple[str, list[str]]:
    """ "name=key=value;key=value" (or just "name", no overrides)."""
    name, _, overrides = text.partition("=")
    return name, [o for o in overrides.split(";") if o]


def run_one(name: str, overrides: list[str], seed: int, args: argparse.Namespace) -> dict:
    folder = args.out / f"{name}-seed{seed}"
    sets = [arg for o in [*overrides, f"train.seed={seed}", *args.set] for arg in ("--set", o)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    common = ["--params", str(args.params), "--store", str(args.store)]
    started = time.perf_counter()
    subprocess.run(
        [*VIDEOGAN, "train", *common, *sets, "--root", str(folder), "--no-tensorboard"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    train_s = time.perf_counter() - started
    models = folder / "models"
    subprocess.run(
        [
            *VIDEOGAN,
            "evaluate",
            *common,
            *sets,
            "--evaluator",
            str(args.evaluator),
            "--checkpoint",
            str(models / "checkpoint.pt"),
            "--snapshots",
            str(models / "snapshots"),
            "--out",
            str(folder / "metrics.json"),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if not args.no_snapshots:
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--score-snapshots",
                str(folder),
                *common,
                *sets,
                "--evaluator",
                str(args.evaluator),
            ],
            env=env,
            check=True,
            cwd=ROOT,
        )
    metrics = json.loads((folder / "metrics.json").read_text())
    iterations = json.loads((folder / "reports/train_log.jsonl").read_text().splitlines()[-1])["step"]
    row = {"variant": name, "seed": seed, **metrics, "train_s_per_it": train_s / max(iterations, 1)}
    if (folder / "snapshots.json").exists():
        row["snapshots"] = json.loads((folder / "snapshots.json").read_text())
    print(format_row(row), flush=True)
    return row


def score_snapshots(folder: Path, args: argparse.Namespace) -> None:
    """Every snapshot of a run's models/snapshots scored like `videogan evaluate` (FVD off), into snapshots.json."""
    from videogan.config import load_config
    from videogan.devices import resolve_device
    from videogan.metrics.run import INIT_SNAPSHOT, build_scorer
    from videogan.sampling import load_generator, sample_clips

    config = load_config(args.params, [*args.set, "evaluate.fvd.enabled=false"])
    n, seed, batch = config.evaluate.num_samples, config.evaluate.seed, config.evaluate.batch_size
    device = resolve_device(config.evaluate.device, "evaluate.device")
    snapshots = folder / "models/snapshots"
    first = load_generator(snapshots / INIT_SNAPSHOT, device)[0]
    scorer = build_scorer(config, args.store, args.evaluator, first.frames, progress=False)[0]
    init = sample_clips(first, n, seed, batch)
    rows = []
    for path in sorted(snapshots.glob("step_*.pt")):
        generator, _, step = load_generator(path, device)
        clips = init if path.name == INIT_SNAPSHOT else sample_clips(generator, n, seed, batch)
        rows.append({"step": step, **scorer.score(clips, init)})
    (folder / "snapshots.json").write_text(json.dumps(rows, indent=1))


def best_snapshot(r: dict) -> str:
    snaps = [s for s in r.get("snapshots", []) if s["step"] > 0]
    if not snaps:
        return "-"
    best = min(snaps, key=lambda s: s["fd_video"])
    return f"{best['fd_video'] / best['fd_video_init']:.2f} @ {best['step']}"


def snapshot_rows(r: dict) -> list[str]:
    return [
        "| "
        + " | ".join(
            [
                r["variant"],
                str(r["seed"]),
                str(s["step"]),
                f"{s['fd_video'] / s['fd_video_init']:.2f}",
                *(f"{s[c]:.2f}" for c in COLUMNS),
            ]
        )
        + " |"
        for s in r.get("snapshots", [])
    ]


def format_row(r: dict) -> str:
    fvd = f"{r['fvd']:.0f} ({r['fvd_ref']:.0f})" if "fvd" in r else "-"
    cells = [
        r["variant"],
        str(r["seed"]),
        f"{r['fd_video'] / r['fd_video_init']:.2f}",
        *(f"{r[c]:.2f}" if c in r else "-" for c in COLUMNS),
        fvd,
        f"{r['train_s_per_it']:.3f}",
        best_snapshot(r),
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--store", type=Path, default=ROOT / "data/processed")
    parser.add_argument("--evaluator", type=Path, default=ROOT / "models/evaluator.pt")
    parser.add_argument("--out", type=Path, default=ROOT / "runs/diversity")
    parser.add_argument("--variant", action="append", default=[], help='"name=key=value;key=value"; repeatable')
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--set", action="append", default=[], help="an override for every run, e.g. train.iterations=500"
    )
    parser.add_argument("--parallel", type=int, default=2, help="runs side by side (one thread each)")
    parser.add_argument("--no-snapshots", action="store_true", help="score only the final checkpoint")
    parser.add_argument("--score-snapshots", type=Path, help=argparse.SUPPRESS)  # one run's folder (internal)
    args = parser.parse_args()
    if args.score_snapshots:
        score_snapshots(args.score_snapshots, args)
        return
    jobs = [(*parse_variant(v), seed) for v in (args.variant or ["baseline"]) for seed in args.seeds]
    header = (
        "| variant | seed | fd_video / init | "
        + " | ".join(COLUMNS)
        + " | fvd (ref) | train s/it | best snapshot fd / init @ step |\n|"
        + "---|" * (len(COLUMNS) + 6)
    )
    print(header, flush=True)
    with ThreadPoolExecutor(args.parallel) as pool:
        rows = list(pool.map(lambda job: run_one(*job, args), jobs))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(header + "\n" + "\n".join(format_row(r) for r in rows) + "\n")
    snapshot_header = (
        "| variant | seed | step | fd_video / init | " + " | ".join(COLUMNS) + " |\n|" + "---|" * (len(COLUMNS) + 4)
    )
    (args.out / "snapshots.md").write_text(
        snapshot_header + "\n" + "\n".join(line for r in rows for line in snapshot_rows(r)) + "\n"
    )


if __name__ == "__main__":
    main()
