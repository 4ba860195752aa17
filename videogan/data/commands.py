"""`videogan download` and `videogan preprocess` (registered in videogan/cli.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from videogan.console import user_errors

PARAMS = Annotated[Path, typer.Option("--params", help="params file (missing keys take the full-size defaults)")]
SET = Annotated[list[str] | None, typer.Option("--set", help="override a params key, e.g. data.frames=16")]
RAW = Annotated[Path, typer.Option("--raw", help="folder for downloaded files")]
OUT = Annotated[Path, typer.Option("--out", help="folder of the clip store")]


def _load(params: Path, overrides: list[str] | None):
    from videogan.config import load_config

    with user_errors():
        return load_config(params, overrides or [])


def download(params: PARAMS = Path("params.yaml"), set_: SET = None, raw: RAW = Path("data/raw")) -> None:
    """Fetch the published file data.dataset needs (nothing for the generated sources)."""
    from videogan.data.download import download_dataset

    config = _load(params, set_)
    with user_errors():
        got = download_dataset(config.data, raw)
    typer.echo(f"{config.data.dataset}: " + (f"ready at {got}" if got else "nothing to download"))


def preprocess(
    params: PARAMS = Path("params.yaml"),
    set_: SET = None,
    raw: RAW = Path("data/raw"),
    out: OUT = Path("data/processed"),
) -> None:
    """Build the clip store ({train,val,test}.npy, labels, meta.json) from data.dataset."""
    from videogan.data.preprocess import prepare

    config = _load(params, set_)
    started = time.perf_counter()
    with user_errors():
        meta = prepare(config, raw, out)
    sizes = json.dumps(meta["sizes"])
    typer.echo(
        f"{meta['source']}: clip store at {out}, clips {sizes}, shape {meta['shapes']['train'][1:]}, "
        f"digest {meta['digest']} ({time.perf_counter() - started:.1f} s)"
    )
