"""Data benchmark: clips/s from the clip store to batched tensors, and generation speed of each source.

    .venv/bin/python benchmarks/data.py                  # both profiles, all sources
    .venv/bin/python benchmarks/data.py --step-seconds 0.8:3.5   # demo:full generator-step seconds

Profiles: `full` is the library default (64x64, 20 frames, batch 64); `demo` is params.yaml when it
exists. A generator step consumes batch_size * n_critic real clips (a burst consumes
batch_size * burst_steps), so the loader must deliver at least 10x batch_size * n_critic per step time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from videogan.config import Config, load_config  # noqa: E402
from videogan.data.batches import ClipBatches  # noqa: E402
from videogan.data.preprocess import prepare  # noqa: E402
from videogan.data.store import open_split, write_store  # noqa: E402

STORE_CLIPS = 2000


def profiles() -> dict[str, Config]:
    params = ROOT / "params.yaml"
    return {"full": load_config(None), "demo": load_config(params) if params.exists() else _assumed_demo()}


def _assumed_demo() -> Config:
    print("note: no params.yaml; demo profile assumed as 32x32, 16 frames, batch 32")
    return load_config(None, ["data.frame_size=32", "data.frames=16", "train.batch_size=32"])


def loader_rate(config: Config, workers: int, tmp: Path, batches: int = 30, repeats: int = 3) -> float:
    """Clips per second that stream() delivers as float (B, C, T, H, W) tensors (best of `repeats`)."""
    d = config.data
    store = tmp / f"store-{d.frame_size}-{d.frames}-{d.channels}"
    if not (store / "meta.json").exists():
        rng = np.random.default_rng(0)
        clips = rng.integers(0, 256, (STORE_CLIPS, d.frames, d.frame_size, d.frame_size, d.channels), np.uint8)
        write_store(store, {"train": clips}, None, {"source": "benchmark"})
    loader = ClipBatches(open_split(store, "train"), config.train.batch_size, config.frames, 0, workers)
    stream = loader.stream(0)
    next(stream)  # start the workers and warm the page cache
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in itertools.islice(stream, batches):
            pass
        best = min(best, time.perf_counter() - start)
    return batches * config.train.batch_size / best


def source_rate(config: Config, tmp: Path, overrides: list[str]) -> tuple[float, int]:
    """(stored clips per second, clips made) for preprocess of `config` with overrides."""
    config = Config.model_validate(_merge(config, overrides))
    start = time.perf_counter()
    meta = prepare(config, tmp, tmp / "bench-store", progress=False)
    made = sum(meta["sizes"].values())
    return made / (time.perf_counter() - start), made


def _merge(config: Config, overrides: list[str]) -> dict:
    from videogan.config import apply_overrides, to_dict

    return apply_overrides(to_dict(config), overrides)


def write_fake_published(tmp: Path, n: int = 2000) -> None:
    data = np.random.default_rng(0).integers(0, 256, (20, n, 64, 64), np.uint8)
    np.save(tmp / "mnist_test_seq.npy", data)


def write_fake_folder(tmp: Path, episodes: int = 4, length: int = 120) -> Path:
    root = tmp / "Ms_Pacman"
    rng = np.random.default_rng(0)
    for split, count in (("Train", episodes), ("Test", 2)):
        for ep in range(count):
            folder = root / split / str(ep)
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(length):
                frame = np.zeros((210, 160, 3), np.uint8)
                frame[..., 2] = 136
                x = (7 * i + int(rng.integers(0, 20))) % 140
                frame[40:60, x : x + 20] = (210, 164, 74)
                Image.fromarray(frame).save(folder / f"{i}.png")
    return root


SOURCES = {
    "moving_mnist_generated": [
        "data.dataset=moving_mnist_generated",
        "data.moving_mnist_generated.train_sequences=2000",
        "data.moving_mnist_generated.val_sequences=200",
        "data.moving_mnist_generated.test_sequences=200",
    ],
    "moving_mnist (file)": [
        "data.dataset=moving_mnist",
        "data.moving_mnist.val_sequences=200",
        "data.moving_mnist.test_sequences=200",
    ],
    # the same clips for any worker count (tests/test_data_pacman.py); enough of them to outlast the start
    **{
        f"pacman_emulator, {n} worker{'s' * (n > 1)}": [
            "data.dataset=pacman_emulator",
            "data.pacman_emulator.train_clips=2000",
            "data.pacman_emulator.val_clips=200",
            "data.pacman_emulator.test_clips=200",
            f"data.pacman_emulator.workers={n}",
        ]
        for n in sorted({1, len(os.sched_getaffinity(0))})
    },
    "pacman_folder": ["data.dataset=pacman_folder"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-seconds", help="demo:full seconds per generator step, from benchmarks/train_step.py")
    parser.add_argument("--skip-sources", action="store_true", help="only the loader")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--sources", nargs="*", help="only the sources whose name starts with one of these")
    parser.add_argument("--profiles", nargs="*", default=["full", "demo"], help="which profiles")
    args = parser.parse_args()
    step_s = dict(zip(("demo", "full"), map(float, args.step_seconds.split(":")))) if args.step_seconds else {}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; torch threads {torch.get_num_threads()}")
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name, config in profiles().items():
            if name in args.profiles:
                results[name] = _profile(name, config, tmp, step_s.get(name), args.skip_sources, args.sources)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def _profile(
    name: str, config: Config, tmp: Path, step_seconds: float | None, skip_sources: bool, sources: list[str] | None
) -> dict:
    d, t = config.data, config.train
    per_step = t.batch_size * t.schedule.n_critic
    print(
        f"\n[{name}] store {d.frame_size}x{d.frame_size}x{d.channels}, {d.frames} frames; model {config.frames} "
        f"frames; batch {t.batch_size}, n_critic {t.schedule.n_critic}: {per_step} clips per generator step "
        f"({t.batch_size * t.schedule.burst_steps} in a burst)"
    )
    out: dict = {"clips_per_generator_step": per_step}
    for workers in (0, 2):
        rate = loader_rate(config, workers, tmp)
        out[f"loader_clips_per_s_{workers}_workers"] = round(rate)
        line = f"  loader, {workers} workers: {rate:8.0f} clips/s = {rate / per_step:6.1f} generator steps/s"
        if step_seconds:
            needed = 10 * per_step / step_seconds
            verdict = "ok" if rate >= needed else "SHORT"
            line += f" (10x a {step_seconds:.2f} s step needs {needed:.0f} clips/s: {verdict})"
        print(line)
    if not skip_sources:
        write_fake_published(tmp)
        write_fake_folder(tmp / "pacman_folder")
        for source, overrides in SOURCES.items():
            if sources and not any(source.startswith(prefix) for prefix in sources):
                continue
            rate, made = source_rate(config, tmp, overrides)
            out[f"generate_{source}_clips_per_s"] = round(rate, 1)
            print(f"  source {source:24s}: {rate:8.1f} stored clips/s ({made} clips)")
    return out


if __name__ == "__main__":
    main()
