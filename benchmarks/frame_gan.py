"""Frames alone: train the generator's frame decoder as an image GAN against single real frames.

    .venv/bin/python benchmarks/frame_gan.py --store data/processed --evaluator models/evaluator.pt \\
        --recipe demo --recipe ns-r1 --iterations 2000 --score-every 500 --out /tmp/frames

No LSTM and no video critic: the decoder (params.yaml's model.generator sizes) renders a frame from
noise, a 2D critic (params.yaml's model.critic widths) scores single frames drawn from the store's
train split. This asks whether the decoder and a loss can draw the content at all, and how fast.
Every `--score-every` iterations, 500 clips of independent generated frames are scored against the
real test split by the same evaluator as the pipeline (frame metrics only: `digits_per_frame`,
`recognisable_frames`, `fd_frame`), and a sheet of 64 frames is saved. Two recipes run side by side,
one thread each; `--out`/table.md collects every row.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name -> (loss, penalty weight, n_critic, adam betas, learning rate, decoder norm)
RECIPES = {
    "demo": ("wgan-gp", 200.0, 2, (0.5, 0.9), 2e-4, "layer"),  # params.yaml's training, LayerNorm decoder
    "demo-bn": ("wgan-gp", 200.0, 2, (0.5, 0.9), 2e-4, "batch"),
    "wgan-gp10": ("wgan-gp", 10.0, 2, (0.5, 0.9), 2e-4, "layer"),
    "ns-r1": ("non-saturating", 1.0, 1, (0.5, 0.99), 2e-4, "layer"),  # StyleGAN2's loss, R1 gamma 1
    "ns-r1-bn": ("non-saturating", 1.0, 1, (0.5, 0.99), 2e-4, "batch"),
    "hinge-bn": ("hinge", 0.0, 1, (0.0, 0.9), 2e-4, "batch"),
}


def train_recipe(name: str, args: argparse.Namespace) -> list[dict]:
    import numpy as np
    import torch

    from videogan.config import load_config
    from videogan.data import store
    from videogan.losses import critic_loss, generator_loss, gradient_penalty, r1_penalty
    from videogan.metrics.run import build_scorer
    from videogan.models.critic import ImageCritic
    from videogan.models.generator import FrameDecoder
    from videogan.models.init import initialise
    from videogan.render import frame_sheet

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    loss, weight, n_critic, betas, lr, norm = RECIPES[name]
    config = load_config(args.params, ["evaluate.fvd.enabled=false"])
    g = config.model.generator
    size, channels, frames = config.data.frame_size, config.data.channels, config.frames
    decoder = FrameDecoder(g.motion_dim + g.content_dim, size, channels, g.width, g.max_width, g.upsample, norm)
    critic = ImageCritic(size, channels, tuple(config.model.critic.widths))
    for m in (decoder, critic):
        initialise(m, config.model.init)
    opt_g = torch.optim.Adam(decoder.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(critic.parameters(), lr=lr, betas=betas)
    train = store.open_split(args.store, "train")
    real_frames = torch.from_numpy(np.ascontiguousarray(train.reshape(-1, size, size, channels))).permute(0, 3, 1, 2)
    scorer, _ = build_scorer(config, args.store, args.evaluator, frames, progress=False)
    batch, rng = args.batch, torch.Generator().manual_seed(args.seed)
    noise = lambda n: torch.rand(n, decoder.stem.in_features, generator=rng) * 2 - 1  # noqa: E731
    out = args.out / name
    out.mkdir(parents=True, exist_ok=True)
    rows, started = [], time.perf_counter()

    def score(step: int) -> None:
        decoder.eval() if norm == "layer" else decoder.train()  # BatchNorm: batch statistics, as in training
        with torch.no_grad():
            fake = torch.cat([decoder(noise(500)) for _ in range(frames)])  # (frames * 500, C, H, W)
        decoder.train()
        clips = ((fake.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        clips = clips.view(frames, 500, channels, size, size).permute(1, 0, 3, 4, 2).numpy()
        metrics = scorer.score(clips)
        row = {"recipe": name, "step": step, "seconds": round(time.perf_counter() - started, 1)}
        row.update({k: round(float(metrics[k]), 4) for k in ("digits_per_frame", "recognisable_frames", "fd_frame")})
        rows.append(row)
        frame_sheet(clips[:8, :8], out / f"step_{step:05d}.png")
        print(json.dumps(row), flush=True)

    for step in range(args.iterations + 1):
        if step % args.score_every == 0:
            score(step)
        if step == args.iterations:
            break
        for _ in range(n_critic):
            idx = torch.randint(len(real_frames), (batch,), generator=rng)
            real = real_frames[idx].float() / 127.5 - 1
            with torch.no_grad():
                fake = decoder(noise(batch))
            if loss == "non-saturating":
                real_scores, penalty = r1_penalty(critic, real)
                d_loss = critic_loss(loss, real_scores, critic(fake)) + weight / 2 * penalty
            else:
                d_loss = critic_loss(loss, critic(real), critic(fake))
                if weight > 0:
                    d_loss = d_loss + weight * gradient_penalty(critic, real, fake, torch.rand(batch, generator=rng))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        critic.requires_grad_(False)
        g_loss = generator_loss(loss, critic(decoder(noise(batch))))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        critic.requires_grad_(True)
    (out / "rows.json").write_text(json.dumps(rows, indent=1))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=ROOT / "data/processed")
    parser.add_argument("--evaluator", type=Path, default=ROOT / "models/evaluator.pt")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--recipe", action="append", choices=sorted(RECIPES), required=True)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--score-every", type=int, default=500)
    parser.add_argument(
        "--batch", type=int, default=64, help="frames per step (the demo's 16 videos x 10 frames = 160)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("frame-gan"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(train_recipe, args.recipe, [args] * len(args.recipe)))
    lines = [
        "| recipe | step | s | digits_per_frame | recognisable_frames | fd_frame |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in (r for rows in results for r in rows):
        lines.append(
            f"| {row['recipe']} | {row['step']} | {row['seconds']} | {row['digits_per_frame']} | "
            f"{row['recognisable_frames']} | {row['fd_frame']} |"
        )
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
