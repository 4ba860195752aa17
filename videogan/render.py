"""Video grids, GIF files, and the report renders (`videogan render`).

GIFs are written frame by frame with one shared palette: grey frames use the
identity grey palette (they read back exactly), RGB frames one palette
quantised over all frames together. Every frame is written, even one equal to
the one before (Pillow's GIF saver merges those, which would shorten static
videos).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import torch

from videogan.data.batches import to_clips
from videogan.errors import RenderError  # noqa: F401  (raised here; also importable from here)
from videogan.files import write_atomic
from videogan.sampling import fixed_noise, render_noise


def video_grid(videos: torch.Tensor | np.ndarray, ncol: int | None = None, pad: int = 1) -> np.ndarray:
    """Videos (B, C, T, H, W) float in [-1, 1], or clips (B, T, H, W, C) uint8 -> frames (T, H', W', C) uint8."""
    clips = to_clips(videos) if isinstance(videos, torch.Tensor) else np.asarray(videos)
    b, t, h, w, c = clips.shape
    ncol = ncol or int(np.ceil(np.sqrt(b)))
    nrow = int(np.ceil(b / ncol))
    grid = np.zeros((t, nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), np.uint8)
    for i in range(b):
        r, q = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        grid[:, y : y + h, x : x + w] = clips[i]
    return grid


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 4) -> np.ndarray:
    """Two frame sequences (T, H, W, C) next to each other, separated by a white bar; heights padded."""
    height = max(left.shape[1], right.shape[1])
    pad = lambda f: np.pad(f, ((0, 0), (0, height - f.shape[1]), (0, 0), (0, 0)))  # noqa: E731
    bar = np.full((left.shape[0], height, gap, left.shape[3]), 255, np.uint8)
    return np.concatenate([pad(left), bar, pad(right)], axis=2)


def frame_sheet(clips: np.ndarray, path: str | Path, scale: int = 2, pad: int = 2) -> Path:
    """Clips (N, T, H, W, C) uint8 -> a PNG with one video per row and its frames left to right, each pixel
    `scale` x `scale`, white gaps between frames (what a person looks at when judging samples)."""
    import imageio.v3 as iio

    clips = np.asarray(clips)
    n, t, h, w, c = clips.shape
    sheet = np.full((n * (h + pad) + pad, t * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        for j in range(t):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            sheet[y : y + h, x : x + w] = clips[i, j]
    sheet = sheet.repeat(scale, 0).repeat(scale, 1)
    return write_atomic(iio.imwrite("<bytes>", sheet[..., 0] if c == 1 else sheet, extension=".png"), path)


def gif_bytes(frames: np.ndarray, fps: int = 8) -> bytes:
    """Frames (T, H, W, C) uint8, C in {1, 3} -> an endlessly looping GIF shown for T / fps seconds.

    Grey frames keep every level exactly. Equal consecutive frames may be stored once with their durations
    added (Pillow's GIF writer does that), so what is kept is the time each frame is on screen."""
    import imageio.v3 as iio

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"frames must be uint8 (T, H, W, 1 or 3), got {frames.dtype} {frames.shape}")
    images = frames[..., 0] if frames.shape[-1] == 1 else frames
    return iio.imwrite("<bytes>", images, extension=".gif", plugin="pillow", duration=1000 / fps, loop=0)


def save_gif(frames: np.ndarray, path: str | Path, fps: int = 8) -> Path:
    """Frames (T, H, W, C) uint8 -> an endlessly looping GIF with exactly T frames, written atomically."""
    return write_atomic(gif_bytes(frames, fps), path)


# ------------------------------------------------------------------ generator renders
def interpolation_noise(generator, rows: int, steps: int, seed: int) -> torch.Tensor:
    """(rows * steps, D): each row walks linearly from one noise vector to another, ends included."""
    ends = fixed_noise(generator, 2 * rows, seed)
    start, end = ends[:rows, None], ends[rows:, None]
    alpha = torch.linspace(0, 1, steps)[None, :, None]
    return ((1 - alpha) * start + alpha * end).flatten(0, 1)


def snapshot_paths(folder: str | Path, max_rows: int = 12) -> list[Path]:
    """The step_NNNNNNN.pt snapshots in step order, thinned evenly (first and last kept) to max_rows."""
    paths = sorted(Path(folder).glob("step_*.pt"))
    if len(paths) <= max_rows:
        return paths
    keep = np.unique(np.linspace(0, len(paths) - 1, max_rows).round().astype(int))
    return [paths[i] for i in keep]


# ------------------------------------------------------------------ training curves
def read_log(path: str | Path) -> list[dict]:
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise RenderError(f"{path}:{number} is not a JSON object; the training log is damaged") from None
    return rows


def plot_training_curves(log: str | Path, path: str | Path) -> Path:
    """One panel per numeric key of the training log (against `step`), as a PNG."""
    from matplotlib.figure import Figure

    rows = [r for r in read_log(log) if isinstance(r.get("step"), (int, float))]
    keys = sorted(
        {
            k
            for r in rows
            for k, v in r.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)
        }
    )
    if not keys:
        raise RenderError(f"{log} has no numeric series to plot")
    ncol = min(3, len(keys))
    nrow = -(-len(keys) // ncol)
    figure = Figure(figsize=(4.5 * ncol, 2.8 * nrow), layout="constrained")
    for i, key in enumerate(keys):
        axis = figure.add_subplot(nrow, ncol, i + 1)
        points = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        axis.plot(*zip(*points), linewidth=1)
        axis.set_title(key, fontsize=9)
        axis.set_xlabel("step", fontsize=8)
        axis.tick_params(labelsize=7)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return write_atomic(buffer.getvalue(), path)


# ------------------------------------------------------------------ videogan render
def render_reports(
    config, store_dir: str | Path, checkpoint: str | Path, snapshots: str | Path, log: str | Path, out_dir: str | Path
) -> list[Path]:
    """Write samples.gif, real_vs_generated.gif, interpolation.gif, snapshots.gif and training_curves.png.

    The last two are skipped (with a note on stderr) when there are no snapshots or no training log.
    """
    from videogan.devices import resolve_device
    from videogan.sampling import load_generator

    device = resolve_device(config.evaluate.device, "evaluate.device")
    generator = load_generator(checkpoint, device)[0]
    out = Path(out_dir)
    written = _render_samples(config, generator, store_dir, out)
    written += _render_snapshots(config, generator, snapshots, out, device)
    if Path(log).exists():
        written.append(plot_training_curves(log, out / "training_curves.png"))
    else:
        print(f"note: no training log at {log}; training_curves.png not written", file=sys.stderr)
    return written


def _render_samples(config, generator, store_dir: str | Path, out: Path) -> list[Path]:
    """The main grid (fixed noise), real beside generated, and the noise interpolation."""
    from videogan.data.store import open_split

    r, seed, batch = config.evaluate.render, config.evaluate.seed, config.evaluate.batch_size
    videos = render_noise(generator, fixed_noise(generator, max(r.videos, r.side_by_side), seed), batch)
    real = open_split(store_dir, "test")[: r.side_by_side, : videos.shape[2]]
    walk = interpolation_noise(generator, r.interpolation_rows, r.interpolation_steps, seed + 1)
    return [
        save_gif(video_grid(videos[: r.videos]), out / "samples.gif", r.fps),
        save_gif(
            side_by_side(video_grid(real), video_grid(videos[: r.side_by_side])), out / "real_vs_generated.gif", r.fps
        ),
        save_gif(
            video_grid(render_noise(generator, walk, batch), ncol=r.interpolation_steps),
            out / "interpolation.gif",
            r.fps,
        ),
    ]


def _render_snapshots(config, generator, snapshots: str | Path, out: Path, device) -> list[Path]:
    """One row per saved snapshot (same noise in every row), oldest at the top."""
    from videogan.sampling import load_generator

    paths = snapshot_paths(snapshots)
    if not paths:
        print(f"note: no snapshots in {snapshots}; snapshots.gif not written", file=sys.stderr)
        return []
    r = config.evaluate.render
    noise = fixed_noise(generator, r.snapshot_videos, config.evaluate.seed)
    rows = [render_noise(load_generator(p, device)[0], noise, config.evaluate.batch_size) for p in paths]
    return [save_gif(video_grid(torch.cat(rows), ncol=r.snapshot_videos), out / "snapshots.gif", r.fps)]
