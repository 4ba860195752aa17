"""`videogan train` and `videogan sample`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from videogan.config import load_config
from videogan.console import fail, user_errors
from videogan.errors import TrainingInterrupted, UserError

Params = Annotated[Path, typer.Option("--params", help="params file (missing keys take the full-size defaults)")]
Overrides = Annotated[Optional[list[str]], typer.Option("--set", help="override a key: --set train.iterations=50")]


def train(
    params: Params = Path("params.yaml"),
    overrides: Overrides = None,
    store: Annotated[Path, typer.Option(help="clip store written by `videogan preprocess`")] = Path("data/processed"),
    root: Annotated[Path, typer.Option(help="folder that receives models/, reports/ and .videogan/")] = Path("."),
    resume: Annotated[Optional[Path], typer.Option(help="resume from this full checkpoint")] = None,
    tensorboard: Annotated[bool, typer.Option(help="write TensorBoard scalars and videos")] = True,
) -> None:
    """Train the GAN on the clip store; resumes automatically when the same config ran before."""
    from videogan.training.api import train_from_store

    try:
        config = load_config(params, overrides)
        result = train_from_store(config, store, root, resume_from=resume, tensorboard=tensorboard)
    except TrainingInterrupted as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.YELLOW)
        raise typer.Exit(exc.exit_code) from None
    except UserError as exc:
        fail(str(exc))
    typer.echo(f"trained to step {result.step}; full checkpoint: {result.checkpoint}")


def sample(
    checkpoint: Annotated[Path, typer.Option(help="full checkpoint or generator snapshot")],
    out: Annotated[
        Path,
        typer.Option(help="GIF grid to write (.npy: a uint8 clip array; .png: a sheet, one video per row)"),
    ],
    n: Annotated[int, typer.Option(help="number of videos")] = 16,
    seed: Annotated[int, typer.Option(help="noise seed; the same seed gives the same videos")] = 0,
    fps: int = 8,
) -> None:
    """Draw videos from a trained generator into a GIF grid, a clip array or a sheet of frames."""
    import numpy as np

    from videogan.render import frame_sheet, save_gif, video_grid
    from videogan.sampling import load_generator, sample_clips

    if n < 1:
        fail("--n must be at least 1")
    with user_errors():
        generator, _, step = load_generator(checkpoint)
    clips = sample_clips(generator, n, seed)
    if out.suffix == ".npy":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, clips)
    elif out.suffix == ".png":  # every other frame of videos longer than 8, as a person scans them
        frame_sheet(clips[:, :: 2 if clips.shape[1] > 8 else 1], out)
    else:
        save_gif(video_grid(clips), out, fps)
    typer.echo(f"wrote {n} videos from step {step} to {out}")
